"""The platform's rotation function: AWS's alternating-users MySQL template, when the schedule
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
from tests.platform.fidelity.rotation import (
    IN_PROGRESS,
    NO_CURRENT,
    NO_MASTER,
    NO_MASTER_KEY,
    come_due,
)
from wpenv import reasons
from wpenv.aws import Clients
from wpenv.engine import make_context
from wpenv.errors import TransientError
from wpenv.reconcilers.base import Context, Observation
from wpenv.reconcilers.database import Database
from wpenv.reconcilers.db_secret import DatabaseSecret, current_version
from wpenv.reconcilers.observations import Observations
from wpenv.settings import Settings

pytestmark = pytest.mark.e2e

OTHER_FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:wpenv-other-rotation"


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


def _rotating(provisioned: MakeCtx) -> Context:
    """A tenant whose user exists and whose secret has rotation on (the operator's steps)."""
    ctx = provisioned()  # the Database step makes the user and switches rotation on
    assert ctx.clients.secretsmanager.describe_secret(
        SecretId=ctx.ids["dbSecretArn"])["RotationEnabled"] is True
    return ctx


def test_a_rotation_alternates_the_users_and_keeps_the_old_login(
    provisioned: MakeCtx, clients: Clients, endpoint: str
) -> None:
    ctx = _rotating(provisioned)
    arn = ctx.ids["dbSecretArn"]
    user, clone = ctx.names.database_user, ctx.names.database_user + "_clone"
    before, old_version = _value(clients, arn), current_version(
        clients.secretsmanager.describe_secret(SecretId=arn))
    assert before["username"] == user and before["masterarn"]
    outcome = come_due(endpoint, arn)
    assert outcome["rotated"] is True and outcome["step"] == "", outcome
    after = _value(clients, arn)
    assert after["username"] == clone and after["password"] != before["password"]
    assert {k: v for k, v in after.items() if k not in ("password", "username")} == \
        {k: v for k, v in before.items() if k not in ("password", "username")}
    stages = _stages(clients, arn)
    assert stages[outcome["version"]] == ["AWSCURRENT"]
    assert stages[str(old_version)] == ["AWSPREVIOUS"]
    assert not any("AWSPENDING" in s for s in stages.values())
    assert _value(clients, arn, "AWSPREVIOUS") == before
    # Alternating users: the clone logs in with the new password, the first user still
    # with the old one, and the clone has the first user's grants (its database).
    assert _logs_in(after) and _logs_in(before)
    plain = json.loads(clients.secretsmanager.get_secret_value(SecretId=arn)["SecretString"])
    assert plain == after
    # The second rotation goes back to the first user; the clone keeps its password.
    again = come_due(endpoint, arn)
    assert again["rotated"] is True
    latest = _value(clients, arn)
    assert latest["username"] == user and _value(clients, arn, "AWSPREVIOUS") == after
    assert _logs_in(latest) and _logs_in(after) and not _logs_in(before)


def _refused(clients: Clients, endpoint: str, arn: str, error: str) -> None:
    """The rotation fails in setSecret with `error`: AWSCURRENT untouched, AWSPENDING left,
    and the next RotateSecret refused while it stays."""
    before = _value(clients, arn)
    outcome = come_due(endpoint, arn)
    assert outcome["rotated"] is False and outcome["step"] == "setSecret", outcome
    assert outcome["error"] == error
    assert _value(clients, arn) == before
    assert _stages(clients, arn)[outcome["version"]] == ["AWSPENDING"]
    with pytest.raises(ClientError) as refused:  # "a previous rotation isn't complete"
        clients.secretsmanager.rotate_secret(SecretId=arn, RotateImmediately=False)
    answer = refused.value.response["Error"]
    assert (answer["Code"], answer["Message"]) == ("InvalidRequestException", IN_PROGRESS)


def test_a_rotation_refuses_when_the_user_does_not_exist(
    provisioned: MakeCtx, clients: Clients, endpoint: str
) -> None:
    """setSecret cannot log in with AWSCURRENT: rotation fails, AWSPENDING stays."""
    ctx = _rotating(provisioned)
    arn = ctx.ids["dbSecretArn"]
    Database().ensure_absent(ctx)  # the user is gone; rotation is still on
    before = _value(clients, arn)
    _refused(clients, endpoint, arn, NO_CURRENT.format(arn=arn))
    pending = _value(clients, arn, "AWSPENDING")
    assert pending["password"] != before["password"]
    assert pending["username"] == before["username"] + "_clone"
    # Reattempted with the same version once the user is back (the operator remakes it
    # with AWSCURRENT's password), and then it completes.
    Database().create(ctx, Database().observe(ctx))
    retried = come_due(endpoint, arn)
    assert retried["rotated"] is True
    assert _value(clients, arn)["password"] == pending["password"]
    assert _logs_in(pending) and _logs_in(before)


@pytest.mark.parametrize("master", ["", "arn:aws:secretsmanager:us-east-1:123456789012:"
                                        "secret:wpenv/no-such-master-AbCdEf"])
def test_a_rotation_refuses_without_a_readable_master_secret(
    provisioned: MakeCtx, clients: Clients, endpoint: str, master: str
) -> None:
    """No `masterarn`, or one naming no secret: setSecret fails before any SQL."""
    ctx = _rotating(provisioned)
    arn = ctx.ids["dbSecretArn"]
    value = {k: v for k, v in _value(clients, arn).items() if k != "masterarn"}
    if master:
        value["masterarn"] = master
    clients.secretsmanager.put_secret_value(SecretId=arn, SecretString=json.dumps(value))
    error = NO_MASTER.format(arn=master) if master else NO_MASTER_KEY.format(arn=arn)
    _refused(clients, endpoint, arn, error)
    assert _logs_in(value)  # the user is untouched


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


def test_a_cache_from_before_the_rotation_resets_no_password(
    provisioned: MakeCtx, clients: Clients, endpoint: str
) -> None:
    """The shared cache still holds the value from before the rotation: its user still
    logs in (the rotation changed the other one), so the Database step repairs nothing of
    either password, and the new version is recorded once the cache moves on."""
    ctx = _rotating(provisioned)
    arn = ctx.ids["dbSecretArn"]
    ctx.observations = Observations(600.0)
    secret, database = DatabaseSecret(), Database()
    assert secret.observe(ctx).up_to_date and database.observe(ctx).up_to_date  # cached now
    before = _value(clients, arn)
    old = ctx.ids["dbSecretVersion"] = current_version(
        clients.secretsmanager.describe_secret(SecretId=arn))
    outcome = come_due(endpoint, arn)
    assert outcome["rotated"] is True
    assert secret.observe(ctx).ids["dbSecretVersion"] == old  # the listing is from before
    observed = database.observe(ctx)
    assert observed.found.login and "does not log in" not in observed.detail, observed.detail
    database.update(ctx, observed)  # the clone's connection cap, nothing else
    assert _logs_in(_value(clients, arn)) and _logs_in(before)  # the rotation stands
    ctx.observations = Observations(600.0)  # the cache's time is up
    assert secret.observe(ctx).ids["dbSecretVersion"] == outcome["version"] != old
    assert database.observe(ctx).up_to_date


def test_a_rotation_left_pending_makes_the_secret_step_wait(
    provisioned: MakeCtx, clients: Clients, endpoint: str, settings: Settings
) -> None:
    """RotateSecret refused ("a previous rotation isn't complete"): with other rotation
    settings wanted the step waits (RotationInProgress); when what AWS holds is already
    what is wanted (a retried call whose first attempt took) it is done."""
    ctx = _rotating(provisioned)
    arn = ctx.ids["dbSecretArn"]
    ids = dict(ctx.ids)  # the login proof, as recorded before the user went
    Database().ensure_absent(ctx)
    _refused(clients, endpoint, arn, NO_CURRENT.format(arn=arn))
    other = make_context(
        namespace="it", name=ctx.names.tenant, spec={"tenantId": ctx.names.tenant},
        settings=settings.model_copy(update={"db_rotation_lambda_arn": OTHER_FUNCTION}),
        clients=clients, ids=dict(ids),
    )
    secret = DatabaseSecret()
    observed = secret.observe(other)
    assert not observed.up_to_date and "rotation" in observed.detail
    with pytest.raises(TransientError) as waiting:
        secret.update(other, observed)
    assert waiting.value.reason == reasons.ROTATION_IN_PROGRESS
    assert ctx.names.db_secret in str(waiting.value)
    described = clients.secretsmanager.describe_secret(SecretId=arn)
    assert described["RotationLambdaARN"] == settings.db_rotation_lambda_arn  # unchanged

    same = make_context(namespace="it", name=ctx.names.tenant,
                        spec={"tenantId": ctx.names.tenant}, settings=settings,
                        clients=clients, ids=dict(ids))
    # What observe read before the first attempt of RotateSecret took: rotation off.
    stale = Observation(exists=True, up_to_date=False,
                        found={**described, "RotationEnabled": False})
    secret.update(same, stale)  # refused again, but AWS already holds what is wanted
    assert clients.secretsmanager.describe_secret(SecretId=arn)["RotationEnabled"] is True
