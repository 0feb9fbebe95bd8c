"""The tenant DB secret's value, rotation and staleness checks, without AWS."""

from __future__ import annotations

import re

import pytest

from wpenv.engine import make_context
from wpenv.errors import TransientError
from wpenv.reconcilers import db_secret as ds
from wpenv.reconcilers.base import Context
from wpenv.settings import Settings

ENDPOINT = {"host": "db.example.internal", "port": "3306"}
LAMBDA = "arn:aws:lambda:us-east-1:123456789012:function:rotate-mysql"


def _ctx(tenant: str = "acme", rotation: str = "") -> Context:
    settings = Settings(db_rotation_lambda_arn=rotation)
    return make_context("ns", tenant, {"tenantId": tenant}, settings=settings, clients=None)


def test_desired_fields_name_the_tenant_database_on_the_master_endpoint() -> None:
    ctx = _ctx("acme-corp")
    assert ds.desired_fields(ctx, ENDPOINT) == {
        "engine": "mysql",
        "host": "db.example.internal",
        "port": 3306,
        "username": "wp_acme_corp",
        "dbname": "wp_acme_corp",
    }
    assert ctx.names.db_secret == "wpenv/acme-corp/database"


def test_desired_fields_never_hold_a_password() -> None:
    assert "password" not in ds.desired_fields(_ctx(), ENDPOINT)


def test_rotation_is_off_unless_a_lambda_is_configured() -> None:
    assert ds.desired_rotation(_ctx()) is None
    assert ds.desired_rotation(_ctx(rotation=LAMBDA)) == {
        "RotationLambdaARN": LAMBDA,
        "RotationRules": {"AutomaticallyAfterDays": 30},
    }


def test_new_passwords_are_long_url_safe_and_fresh() -> None:
    first, second = ds.new_password(), ds.new_password()
    assert first != second
    assert len(first) >= 40
    assert re.fullmatch(r"[A-Za-z0-9_-]+", first)


def test_field_differences_compare_the_port_as_a_number_and_ignore_the_password() -> None:
    wanted = ds.desired_fields(_ctx(), ENDPOINT)
    stored = {**wanted, "port": "3306", "password": "whatever"}
    assert ds.field_differences(wanted, stored) == []
    moved = {**stored, "host": "elsewhere", "port": "not-a-port"}
    assert ds.field_differences(wanted, moved) == ["host", "port"]
    assert ds.field_differences(wanted, {}) == [f for f in ds.FIELDS if f != "masterarn"]


MASTER = "arn:aws:secretsmanager:us-east-1:123456789012:secret:wpenv/rds-rotation-master-AbCdEf"


def test_the_value_names_the_rotations_master_secret_when_the_settings_do() -> None:
    settings = Settings(db_rotation_master_secret_arn=MASTER)
    ctx = make_context("ns", "acme", {"tenantId": "acme"}, settings=settings, clients=None)
    wanted = ds.desired_fields(ctx, ENDPOINT)
    assert wanted["masterarn"] == MASTER
    assert ds.field_differences(wanted, {**wanted, "masterarn": MASTER + "x"}) == ["masterarn"]
    assert ds.field_differences(wanted, {k: v for k, v in wanted.items()
                                         if k != "masterarn"}) == ["masterarn"]


@pytest.mark.parametrize("username", ["wp_acme", "wp_acme_clone"])
def test_either_of_the_two_users_is_kept_and_no_other(username: str) -> None:
    """The alternating rotation moves `username` to `<user>_clone` and back: neither is
    rewritten (that would pair the other user with this password); any other name is."""
    wanted = ds.desired_fields(_ctx(), ENDPOINT)
    value = {**wanted, "username": username}
    assert ds.field_differences(wanted, value) == []
    assert ds.kept_fields(wanted, value)["username"] == username
    other = {**wanted, "username": "wp_other"}
    assert ds.field_differences(wanted, other) == ["username"]
    assert ds.kept_fields(wanted, other)["username"] == "wp_acme"


def test_rotation_matches_only_the_configured_lambda_and_period() -> None:
    wanted = ds.desired_rotation(_ctx(rotation=LAMBDA))
    on = {
        "RotationEnabled": True,
        "RotationLambdaARN": LAMBDA,
        "RotationRules": {"AutomaticallyAfterDays": 30},
    }
    assert ds.rotation_matches(wanted, on)
    assert not ds.rotation_matches(wanted, {**on, "RotationRules": {"AutomaticallyAfterDays": 7}})
    assert not ds.rotation_matches(wanted, {**on, "RotationLambdaARN": LAMBDA + "-old"})
    assert not ds.rotation_matches(wanted, {})
    assert ds.rotation_matches(None, {})
    assert ds.rotation_matches(None, {"RotationEnabled": False})
    assert not ds.rotation_matches(None, on)


def test_tag_problems_name_absent_and_changed_tags() -> None:
    ctx = _ctx()
    secret = ds.DatabaseSecret()
    complete = {"Tags": [*ctx.tag_list, {"Key": "extra", "Value": "kept"}]}
    assert secret.tag_problems(ctx, complete) == []
    first = next(iter(ctx.tags))
    changed = {"Tags": [{**t, "Value": "other"} if t["Key"] == first else t for t in ctx.tag_list]}
    assert secret.tag_problems(ctx, changed) == [
        f"secret {ctx.names.db_secret} lacks tags {[first]}"
    ]
    assert secret.tag_problems(ctx, {}) == [
        f"secret {ctx.names.db_secret} lacks tags {sorted(ctx.tags)}"
    ]


def test_the_endpoint_comes_from_the_settings_never_from_the_master_secret() -> None:
    settings = Settings(db_host="rds.example", db_port=3307, db_master_secret_arn="arn:m")
    ctx = make_context("ns", "acme", {"tenantId": "acme"}, settings=settings, clients=None)
    assert ds.shared_endpoint(ctx) == {"host": "rds.example", "port": 3307}  # no AWS call


def test_no_endpoint_is_transient() -> None:
    ctx = _ctx()
    ctx.settings = ctx.settings.model_copy(update={"db_host": ""})  # whatever the env says
    with pytest.raises(TransientError) as caught:
        ds.shared_endpoint(ctx)
    assert caught.value.reason == "DatabaseHostMissing"


def test_the_current_version_comes_from_either_listing_shape() -> None:
    stages = {"v-old": ["AWSPREVIOUS"], "v-new": ["AWSCURRENT"], "v-next": ["AWSPENDING"]}
    assert ds.current_version({"VersionIdsToStages": stages}) == "v-new"  # DescribeSecret
    assert ds.current_version({"SecretVersionsToStages": stages}) == "v-new"  # ListSecrets
    assert ds.current_version({"VersionIdsToStages": {"v": ["AWSPENDING"]}}) is None
    assert ds.current_version({}) is None
