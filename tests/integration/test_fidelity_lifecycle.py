"""What stays taken for a while after a delete, as AWS keeps it, and the operator waiting.

Against the platform, over boto3: a secret scheduled for deletion keeps its name (and the
operator restores it); a service's security group stays in use until the network
interfaces of its stopped tasks are released (and the teardown finishes once they are); a
deleted service drains before its name can be used again (and the operator re-creates it
once it is INACTIVE).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import MakeCtx, settle, tear_down_settled
from tests.platform.fidelity.secret_names import MESSAGE as NAME_RESERVED
from tests.platform.fidelity.service_drain import MESSAGE as STILL_DRAINING
from wpenv import engine, reasons
from wpenv.errors import TransientError
from wpenv.mysql import read_credentials
from wpenv.reconcilers import registry
from wpenv.reconcilers.base import MISSING, Context
from wpenv.reconcilers.db_secret import DatabaseSecret
from wpenv.reconcilers.security_group import SecurityGroup
from wpenv.reconcilers.service import Service, desired_service

pytestmark = pytest.mark.e2e

KINDS = registry.kinds()
UP_TO_SERVICE = KINDS[: [k.kind for k in KINDS].index("Service") + 1]
TIMEOUT = 60.0


def _error(error: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    found = error.value.response["Error"]
    return str(found["Code"]), str(found["Message"])


def _interfaces(ctx: Context) -> list[dict[str, Any]]:
    """The network interfaces that carry the tenant's security group."""
    return list(ctx.clients.ec2.describe_network_interfaces(Filters=[
        {"Name": "group-id", "Values": [ctx.ids["securityGroupId"]]}])["NetworkInterfaces"])


def _status(ctx: Context) -> str:
    found = ctx.clients.ecs.describe_services(cluster=ctx.settings.cluster_name,
                                              services=[ctx.names.service])["services"]
    return str(found[0]["status"]) if found else "MISSING"


@pytest.fixture
def serving(make_ctx: MakeCtx) -> Iterator[Context]:
    """A tenant whose service runs its tasks (each with its network interface)."""
    ctx = make_ctx(identity={"enabled": False}, replicas=2)
    deadline = time.monotonic() + TIMEOUT
    outcome = settle(ctx, UP_TO_SERVICE)
    while not outcome.ready and outcome.failure is None and time.monotonic() < deadline:
        time.sleep(0.5)
        outcome = settle(ctx, UP_TO_SERVICE)
    assert outcome.ready, outcome.conditions
    yield ctx
    tear_down_settled(ctx, KINDS)


def test_a_secret_name_in_its_recovery_window_is_refused_and_the_secret_restored(
    make_ctx: MakeCtx,
) -> None:
    ctx = make_ctx()
    secret = DatabaseSecret()
    secret.create(ctx, secret.observe(ctx))
    arn = ctx.ids["dbSecretArn"]
    password = read_credentials(ctx.clients, arn)["password"]
    sm = ctx.clients.secretsmanager
    try:
        sm.delete_secret(SecretId=arn, RecoveryWindowInDays=7)  # by hand, with a window
        with pytest.raises(ClientError) as refused:
            sm.create_secret(Name=ctx.names.db_secret, SecretString="{}")
        assert _error(refused) == ("InvalidRequestException", NAME_RESERVED)

        # A pass that did not see the deletion: the name is taken, so it waits ...
        with pytest.raises(TransientError) as waiting:
            secret.create(ctx, MISSING)
        assert waiting.value.reason == reasons.SECRET_DELETION_PENDING
        # ... and the next one finds the secret scheduled for deletion and restores it.
        observed = secret.observe(ctx)
        assert not observed.exists and observed.found is not None
        secret.create(ctx, observed)
        restored = secret.observe(ctx)
        assert restored.exists and restored.up_to_date, restored.detail
        assert restored.ids["dbSecretArn"] == arn  # and the version AWSCURRENT is on
        assert restored.ids["dbSecretVersion"] == sm.get_secret_value(SecretId=arn)["VersionId"]
        assert "DeletedDate" not in sm.describe_secret(SecretId=arn)
        assert read_credentials(ctx.clients, arn)["password"] == password
    finally:
        secret.ensure_absent(ctx)
    sm.create_secret(Name=ctx.names.db_secret, SecretString="{}")  # forced: free at once
    sm.delete_secret(SecretId=ctx.names.db_secret, ForceDeleteWithoutRecovery=True)


def test_the_security_group_stays_in_use_after_the_service_until_the_teardown_ends(
    serving: Context,
) -> None:
    ctx = serving
    group = ctx.ids["securityGroupId"]
    interfaces = _interfaces(ctx)
    assert len(interfaces) == 2, "one network interface per running task"
    assert {i["SubnetId"] for i in interfaces} <= set(ctx.settings.private_subnet_ids)

    Service().ensure_absent(ctx)
    with pytest.raises(ClientError) as refused:
        ctx.clients.ec2.delete_security_group(GroupId=group)
    assert _error(refused) == ("DependencyViolation", f"resource {group} has a dependent object")
    with pytest.raises(TransientError) as waiting:
        SecurityGroup().ensure_absent(ctx)
    assert waiting.value.reason == reasons.SECURITY_GROUP_IN_USE
    assert group in str(waiting.value)
    assert engine.classify(waiting.value) is waiting.value  # retried, never rolled back

    started = time.monotonic()
    stopped = tear_down_settled(ctx, KINDS)  # what the operator's retries do
    assert all(s.resource.kind == "SecurityGroup" for s in stopped), stopped
    assert time.monotonic() - started < TIMEOUT
    with pytest.raises(ClientError) as gone:
        ctx.clients.ec2.describe_security_groups(GroupIds=[group])
    assert _error(gone)[0] == "InvalidGroup.NotFound"
    assert ctx.clients.ec2.describe_network_interfaces(Filters=[
        {"Name": "group-id", "Values": [group]}])["NetworkInterfaces"] == []


def test_a_deleted_service_drains_before_the_operator_creates_it_again(
    serving: Context,
) -> None:
    ctx = serving
    first = ctx.ids["serviceArn"]
    Service().ensure_absent(ctx)
    assert _status(ctx) == "DRAINING"
    assert not Service().observe(ctx).exists  # draining is not there for the engine

    with pytest.raises(ClientError) as refused:
        ctx.clients.ecs.create_service(**desired_service(ctx))
    assert _error(refused) == ("InvalidParameterException", STILL_DRAINING)
    with pytest.raises(TransientError) as waiting:
        Service().create(ctx, Service().observe(ctx))
    assert waiting.value.reason == reasons.SERVICE_DRAINING
    with pytest.raises(TransientError) as racing:  # CreateService itself refused
        Service()._create(ctx)
    assert racing.value.reason == reasons.SERVICE_DRAINING

    waited: set[str] = set()
    deadline = time.monotonic() + TIMEOUT
    while True:
        outcome = engine.converge(ctx, UP_TO_SERVICE)
        waited |= {c.reason for c in outcome.conditions}
        if outcome.ready or outcome.failure or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert outcome.failure is None and outcome.ready, outcome.conditions
    assert reasons.SERVICE_DRAINING in waited
    assert _status(ctx) == "ACTIVE"
    assert ctx.clients.ecs.describe_services(
        cluster=ctx.settings.cluster_name, services=[ctx.names.service]
    )["services"][0]["serviceArn"] == first  # the same name, so the same ARN
