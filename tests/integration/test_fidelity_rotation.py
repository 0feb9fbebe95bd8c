"""The platform's rotation function: AWS's single-user MySQL template, when the schedule
comes due (tests/platform/fidelity/rotation.py), against the real MariaDB.

The operator's steps make the secret, the user, and switch rotation on (30 days); the test
makes the schedule come due now (``POST /wpenv/faults/rotation``), as AWS does when the 30
days are up.
"""

from __future__ import annotations

import json
import os
import urllib.error
from typing import Any

import pymysql
import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import MakeCtx
from tests.platform.fidelity.rotation import IN_PROGRESS, NO_LOGIN, come_due
from wpenv.aws import Clients
from wpenv.reconcilers.base import Context
from wpenv.reconcilers.database import Database
from wpenv.reconcilers.db_secret import DatabaseSecret, current_version
from wpenv.reconcilers.observations import Observations

pytestmark = pytest.mark.e2e


def _value(clients: Clients, arn: str, stage: str = "AWSCURRENT") -> dict[str, Any]:
    answer = clients.secretsmanager.get_secret_value(SecretId=arn, VersionStage=stage)
    return dict(json.loads(answer["SecretString"]))


def _stages(clients: Clients, arn: str) -> dict[str, list[str]]:
    return dict(clients.secretsmanager.describe_secret(SecretId=arn)["VersionIdsToStages"])


def _logs_in(value: dict[str, Any]) -> bool:
    """A TLS login as the tenant's user with this value's password."""
    try:
        conn = pymysql.connect(host=value["host"], port=int(value["port"]),
                               user=value["username"], password=value["password"],
                               database=value["dbname"],
                               ssl_ca=os.environ["WPENV_DB_CA_BUNDLE"], connect_timeout=5)
    except pymysql.err.OperationalError:
        return False
    conn.close()
    return True


def _rotating(make_ctx: MakeCtx) -> Context:
    """A tenant whose user exists and whose secret has rotation on (the operator's steps)."""
    ctx = make_ctx()
    secret = DatabaseSecret()
    secret.create(ctx, secret.observe(ctx))
    Database().create(ctx, Database().observe(ctx))  # makes the user, switches rotation on
    assert ctx.clients.secretsmanager.describe_secret(
        SecretId=ctx.ids["dbSecretArn"])["RotationEnabled"] is True
    return ctx


@pytest.fixture
def made(make_ctx: MakeCtx) -> Any:
    contexts: list[Context] = []

    def build() -> Context:
        ctx = _rotating(make_ctx)
        contexts.append(ctx)
        return ctx

    yield build
    for ctx in contexts:
        Database().ensure_absent(ctx)
        DatabaseSecret().ensure_absent(ctx)


def test_a_rotation_changes_the_password_in_mariadb_and_stages_the_new_version(
    made: Any, clients: Clients, endpoint: str
) -> None:
    ctx = made()
    arn = ctx.ids["dbSecretArn"]
    before, old_version = _value(clients, arn), current_version(
        clients.secretsmanager.describe_secret(SecretId=arn))
    outcome = come_due(endpoint, arn)
    assert outcome["rotated"] is True and outcome["step"] == "", outcome
    after = _value(clients, arn)
    assert after["password"] != before["password"]
    assert {k: v for k, v in after.items() if k != "password"} == \
        {k: v for k, v in before.items() if k != "password"}
    stages = _stages(clients, arn)
    assert stages[outcome["version"]] == ["AWSCURRENT"]
    assert stages[str(old_version)] == ["AWSPREVIOUS"]
    assert not any("AWSPENDING" in s for s in stages.values())
    assert _value(clients, arn, "AWSPREVIOUS") == before
    # Single user: the old password stops working at once, the new one works.
    assert _logs_in(after) and not _logs_in(before)
    # GetSecretValue without a stage reads AWSCURRENT too.
    plain = json.loads(clients.secretsmanager.get_secret_value(SecretId=arn)["SecretString"])
    assert plain == after
    # A second rotation starts from the new one; AWSPREVIOUS follows.
    again = come_due(endpoint, arn)
    assert again["rotated"] is True
    assert _value(clients, arn, "AWSPREVIOUS") == after
    assert _logs_in(_value(clients, arn)) and not _logs_in(after)


def test_a_rotation_refuses_when_the_user_does_not_exist(
    made: Any, clients: Clients, endpoint: str
) -> None:
    """setSecret cannot log in with any version: rotation fails, AWSPENDING stays."""
    ctx = made()
    arn = ctx.ids["dbSecretArn"]
    Database().ensure_absent(ctx)  # the user is gone; rotation is still on
    before = _value(clients, arn)
    outcome = come_due(endpoint, arn)
    assert outcome["rotated"] is False and outcome["step"] == "setSecret"
    assert outcome["error"] == NO_LOGIN.format(arn=arn)
    assert _value(clients, arn) == before  # AWSCURRENT untouched
    stages = _stages(clients, arn)
    assert stages[outcome["version"]] == ["AWSPENDING"]
    pending = _value(clients, arn, "AWSPENDING")
    assert pending["password"] != before["password"]
    with pytest.raises(ClientError) as refused:  # "a previous rotation isn't complete"
        clients.secretsmanager.rotate_secret(SecretId=arn, RotateImmediately=False)
    error = refused.value.response["Error"]
    assert (error["Code"], error["Message"]) == ("InvalidRequestException", IN_PROGRESS)
    # Reattempted with the same version once the user is back (the operator remakes it
    # with AWSCURRENT's password), and then it completes.
    Database().create(ctx, Database().observe(ctx))
    retried = come_due(endpoint, arn)
    assert retried["rotated"] is True and retried["version"] == outcome["version"]
    assert _value(clients, arn)["password"] == pending["password"]
    assert _logs_in(pending) and not _logs_in(before)


def test_nothing_comes_due_without_rotation(
    make_ctx: MakeCtx, clients: Clients, endpoint: str
) -> None:
    ctx = make_ctx()
    secret = DatabaseSecret()
    secret.create(ctx, secret.observe(ctx))  # no user yet: rotation stays off
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            come_due(endpoint, ctx.ids["dbSecretArn"])
        assert refused.value.code == 409
        with pytest.raises(urllib.error.HTTPError) as missing:
            come_due(endpoint, "wpenv/no-such-tenant/database")
        assert missing.value.code == 404
    finally:
        secret.ensure_absent(ctx)


def test_the_operator_follows_a_rotation_its_cache_has_not_seen(
    made: Any, clients: Clients, endpoint: str
) -> None:
    """The shared cache still holds the old value: the Database step reads the secret again
    instead of resetting the user to the old password, and records the new version."""
    ctx = made()
    arn = ctx.ids["dbSecretArn"]
    ctx.observations = Observations(600.0)
    secret, database = DatabaseSecret(), Database()
    assert secret.observe(ctx).up_to_date and database.observe(ctx).up_to_date  # cached now
    old = ctx.ids["dbSecretVersion"] = current_version(
        clients.secretsmanager.describe_secret(SecretId=arn))
    outcome = come_due(endpoint, arn)
    assert outcome["rotated"] is True
    assert secret.observe(ctx).ids["dbSecretVersion"] == old  # the listing is from before
    observed = database.observe(ctx)
    assert observed.up_to_date, observed.detail
    assert ctx.ids["dbSecretVersion"] == outcome["version"] != old
    assert _logs_in(_value(clients, arn))  # the rotation stands
    assert secret.observe(ctx).ids["dbSecretVersion"] == outcome["version"]
