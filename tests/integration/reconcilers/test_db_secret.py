"""The tenant DB secret against the platform's moto: password, value, restore, rotation."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import MakeCtx, aws_calls
from tests.platform.fidelity.rotation import IN_PROGRESS
from wpenv.aws import Clients
from wpenv.engine import make_context
from wpenv.mysql import read_credentials
from wpenv.plan import TAG_RETAINED
from wpenv.reconcilers.base import MISSING, Context
from wpenv.reconcilers.database import Database
from wpenv.reconcilers.db_secret import DatabaseSecret
from wpenv.settings import Settings

pytestmark = pytest.mark.e2e


def _count(clients: Clients, name: str) -> int:
    """Secrets of exactly this name (the name filter is a prefix match)."""
    pages = clients.secretsmanager.get_paginator("list_secrets").paginate(
        Filters=[{"Key": "name", "Values": [name]}]
    )
    return sum(1 for page in pages for s in page["SecretList"] if s["Name"] == name)


@pytest.fixture
def ctx(make_ctx: MakeCtx) -> Iterator[Context]:
    """A fresh tenant whose secret is deleted afterwards, whatever the test did."""
    context = make_ctx()
    yield context
    DatabaseSecret().ensure_absent(context)


def test_create_hides_the_password_and_keeps_it_until_a_delete(
    ctx: Context, clients: Clients
) -> None:
    secret = DatabaseSecret()
    secret.create(ctx, MISSING)
    observed = secret.observe(ctx)
    password = read_credentials(clients, ctx.ids["dbSecretArn"])["password"]
    assert password not in repr(observed) + observed.detail

    secret.create(ctx, MISSING)  # adopts: the password is kept
    assert read_credentials(clients, ctx.ids["dbSecretArn"])["password"] == password

    secret.ensure_absent(ctx)  # forced deletion frees the name at once (rollback, re-provision)
    secret.create(ctx, secret.observe(ctx))
    assert secret.observe(ctx).up_to_date
    assert read_credentials(clients, ctx.ids["dbSecretArn"])["password"] != password


def test_value_points_at_the_platform_mariadb(
    ctx: Context, clients: Clients, platform: dict[str, str]
) -> None:
    secret = DatabaseSecret()
    secret.create(ctx, secret.observe(ctx))
    value = read_credentials(clients, ctx.ids["dbSecretArn"])
    assert set(value) == {"engine", "host", "port", "username", "dbname", "password",
                          "masterarn"}
    assert value["engine"] == "mysql"
    # The alternating-users rotation's superuser secret, which the platform provides.
    assert value["masterarn"] == platform["WPENV_DB_ROTATION_MASTER_SECRET_ARN"]
    assert value["host"] == platform["WPENV_DB_HOST"] == platform["MYSQL_HOST"]
    assert value["port"] == int(platform["WPENV_DB_PORT"]) == int(platform["MYSQL_TCP_PORT"])
    assert value["username"] == ctx.names.database_user
    assert value["dbname"] == ctx.names.database
    assert len(value["password"]) >= 40
    described = clients.secretsmanager.describe_secret(SecretId=ctx.ids["dbSecretArn"])
    tags = {t["Key"]: t["Value"] for t in described["Tags"]}
    assert ctx.tags.items() <= tags.items()


def test_hand_edited_fields_are_rewritten_keeping_the_password(
    ctx: Context, clients: Clients
) -> None:
    secret = DatabaseSecret()
    secret.create(ctx, secret.observe(ctx))
    arn = ctx.ids["dbSecretArn"]
    value = read_credentials(clients, arn)
    edited = {**value, "host": "somewhere.else", "dbname": "other"}
    clients.secretsmanager.put_secret_value(SecretId=arn, SecretString=json.dumps(edited))

    observed = secret.observe(ctx)
    assert observed.exists and not observed.up_to_date
    assert "host" in observed.detail and "dbname" in observed.detail
    assert value["password"] not in observed.detail

    secret.update(ctx, observed)
    assert secret.observe(ctx).up_to_date
    assert read_credentials(clients, arn) == value


def test_the_endpoint_follows_the_settings_and_the_master_secret_is_not_read(
    ctx: Context, clients: Clients, settings: Settings
) -> None:
    """The RDS master secret holds only a login: host and port are the settings'."""
    secret = DatabaseSecret()
    with aws_calls(clients) as calls:
        secret.create(ctx, secret.observe(ctx))
        secret.observe(ctx)
    read = [call for call in calls if call == "GetSecretValue"]
    assert len(read) == 1  # the tenant's own value, by the second observe; never the master's
    master = read_credentials(clients, settings.db_master_secret_arn)
    assert set(master) == {"username", "password"}

    moved = make_context(
        namespace="it", name=ctx.names.tenant, spec={"tenantId": ctx.names.tenant},
        settings=settings.model_copy(update={"db_host": "db.moved.internal", "db_port": 3307}),
        clients=clients, ids=dict(ctx.ids),
    )
    observed = secret.observe(moved)
    assert not observed.up_to_date and "host, port" in observed.detail
    secret.update(moved, observed)
    value = read_credentials(clients, ctx.ids["dbSecretArn"])
    assert (value["host"], value["port"]) == ("db.moved.internal", 3307)


def test_a_secret_scheduled_for_deletion_is_restored(ctx: Context, clients: Clients) -> None:
    secret = DatabaseSecret()
    secret.create(ctx, secret.observe(ctx))
    arn = ctx.ids["dbSecretArn"]
    password = read_credentials(clients, arn)["password"]
    clients.secretsmanager.delete_secret(SecretId=arn, RecoveryWindowInDays=7)

    observed = secret.observe(ctx)
    assert not observed.exists
    secret.create(ctx, observed)
    observed = secret.observe(ctx)
    assert observed.exists and observed.up_to_date, observed.detail
    assert observed.ids["dbSecretArn"] == arn
    assert read_credentials(clients, arn)["password"] == password
    assert _count(clients, ctx.names.db_secret) == 1


# --- rotation ---------------------------------------------------------------------------
# The platform's bootstrap deploys a stub rotation function (WPENV_DB_ROTATION_LAMBDA_ARN)
# and runs its testSecret step itself (tests/platform/fidelity/rotation.py): a TLS login to
# the platform's MariaDB with the secret's value. The operator's side is in test_database.py
# (rotation switched on once the user logs in).


def _stages(clients: Clients, arn: str) -> list[list[str]]:
    described = clients.secretsmanager.describe_secret(SecretId=arn)
    return sorted(sorted(stages) for stages in described["VersionIdsToStages"].values())


def test_a_new_secret_waits_for_a_proven_user_before_rotating(
    ctx: Context, settings: Settings
) -> None:
    """Created without rotation, and not stale for it, until the Database step proves it."""
    assert settings.db_rotation_lambda_arn
    secret = DatabaseSecret()
    secret.create(ctx, secret.observe(ctx))
    observed = secret.observe(ctx)
    assert observed.up_to_date, observed.detail
    assert not observed.found.get("RotationEnabled")


def test_the_platform_fails_rotation_of_a_secret_whose_user_does_not_exist(
    ctx: Context, clients: Clients, settings: Settings
) -> None:
    """testSecret cannot log in: AWSPENDING stays (emptied), the next RotateSecret refused."""
    secret = DatabaseSecret()
    secret.create(ctx, secret.observe(ctx))
    arn = ctx.ids["dbSecretArn"]
    sm = clients.secretsmanager
    sm.rotate_secret(SecretId=arn, RotateImmediately=False,
                     RotationLambdaARN=settings.db_rotation_lambda_arn,
                     RotationRules={"AutomaticallyAfterDays": 30})
    assert _stages(clients, arn) == [["AWSCURRENT"], ["AWSPENDING"]]
    with pytest.raises(ClientError) as refused:
        sm.rotate_secret(SecretId=arn, RotateImmediately=False)
    error = refused.value.response["Error"]
    assert (error["Code"], error["Message"]) == ("InvalidRequestException", IN_PROGRESS)


def test_rotation_follows_the_settings_for_a_proven_secret(
    make_ctx: MakeCtx, settings: Settings, clients: Clients
) -> None:
    """Proven: on as the settings say; off when they say off (no proof needed for that)."""
    secret = DatabaseSecret()
    ctx = make_ctx()
    try:
        secret.create(ctx, secret.observe(ctx))
        arn = ctx.ids["dbSecretArn"]
        plain = make_context(
            namespace="it", name=ctx.names.tenant, spec={"tenantId": ctx.names.tenant},
            settings=settings.model_copy(update={"db_rotation_lambda_arn": ""}),
            clients=clients, ids=dict(ctx.ids),
        )
        # The Database step makes the user, proves the login and switches rotation on.
        Database().create(ctx, MISSING)
        assert ctx.ids["databaseLoginProven"] == arn
        observed = secret.observe(ctx)
        assert observed.up_to_date and observed.found["RotationEnabled"] is True
        described = clients.secretsmanager.describe_secret(SecretId=arn)
        assert described["RotationRules"]["AutomaticallyAfterDays"] == 30

        observed = secret.observe(plain)
        assert observed.exists and not observed.up_to_date
        assert "rotation" in observed.detail
        secret.update(plain, observed)
        assert secret.observe(plain).up_to_date
        assert not clients.secretsmanager.describe_secret(SecretId=arn).get("RotationEnabled")

        observed = secret.observe(ctx)  # on again: the proof is still recorded
        assert not observed.up_to_date
        secret.update(ctx, observed)
        assert secret.observe(ctx).up_to_date
        assert _stages(clients, arn) == [["AWSCURRENT"]]
    finally:
        Database().ensure_absent(ctx)
        secret.ensure_absent(ctx)


def test_delete_removes_the_live_secret_when_the_record_names_an_older_one(
    ctx: Context, clients: Clients
) -> None:
    """Deleted by hand and made again by a drift pass: the status may still name the old."""
    resource = DatabaseSecret()
    resource.create(ctx, resource.observe(ctx))
    old = ctx.ids["dbSecretArn"]
    clients.secretsmanager.delete_secret(SecretId=old, ForceDeleteWithoutRecovery=True)
    ctx.ids.pop("dbSecretArn")
    resource.create(ctx, resource.observe(ctx))
    assert ctx.ids["dbSecretArn"] != old
    ctx.ids["dbSecretArn"] = old  # the stale record
    resource.ensure_absent(ctx)
    assert not resource.observe(ctx).exists
    names = [s["Name"] for s in clients.secretsmanager.list_secrets()["SecretList"]]
    assert ctx.names.db_secret not in names


def test_retain_tags_the_recorded_secret(ctx: Context, clients: Clients) -> None:
    secret = DatabaseSecret()
    secret.create(ctx, secret.observe(ctx))
    arn = ctx.ids["dbSecretArn"]
    secret.tag(ctx, arn, {TAG_RETAINED: "true"})
    described = clients.secretsmanager.describe_secret(SecretId=arn)
    assert {t["Key"]: t["Value"] for t in described["Tags"]}[TAG_RETAINED] == "true"


def test_the_listing_holds_only_database_secrets_and_cleanup_frees_the_name(
    ctx: Context, clients: Clients
) -> None:
    secret = DatabaseSecret()
    secret.create(ctx, secret.observe(ctx))
    arn = ctx.ids["dbSecretArn"]
    settings = ctx.settings
    (item,) = [f for f in secret.managed(clients, settings) if f.id == arn]
    assert ctx.tags.items() <= item.tags.items()
    assert item.details["name"] == ctx.names.db_secret
    assert all(f.details["name"].endswith("/database") for f in secret.managed(clients, settings))
    secret.remove_tolerant(clients, settings, item.found)  # what the orphan cleanup does
    assert _count(clients, ctx.names.db_secret) == 0  # forced: the name is free at once


def test_a_secret_in_its_recovery_window_is_not_listed(ctx: Context, clients: Clients) -> None:
    secret = DatabaseSecret()
    secret.create(ctx, secret.observe(ctx))
    arn = ctx.ids["dbSecretArn"]
    (item,) = [f for f in secret.managed(clients, ctx.settings) if f.id == arn]
    clients.secretsmanager.delete_secret(SecretId=arn, RecoveryWindowInDays=7)
    assert arn not in {f.id for f in secret.managed(clients, ctx.settings)}
    assert secret.refresh(clients, ctx.settings, item) is None
