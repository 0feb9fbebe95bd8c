"""A lost answer: AWS made the resource, the client timed out and asked again.

The platform holds the answer to the first call of each create past the operator's read
timeout (`slow_first`, tests/platform/chaos.py): moto has carried the create out, botocore
gives up waiting and repeats the request (or, for the creates it must not repeat, the
pass ends and the next one looks first). Whatever the route, each resource exists once.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import roll_back_settled
from tests.integration.test_engine import leftovers
from tests.platform.chaos import aws_fault_state, reset_aws_faults, set_aws_faults
from tests.platform.journal import read_journal
from wpenv import engine
from wpenv.aws import Clients
from wpenv.reconcilers.base import Context
from wpenv.settings import Settings

pytestmark = pytest.mark.e2e

READ_TIMEOUT = 1.0
HELD = 2.5  # seconds the platform holds each first answer: past READ_TIMEOUT
# The creates whose repetition could leave a second resource, by how each is made safe.
CREATES = (
    "CreateService",  # a deterministic clientToken
    "CreateAccessPoint",  # ClientToken: EFS answers AccessPointAlreadyExists
    "CreateSecret",  # ClientRequestToken (botocore's own, the same on each attempt)
    "CreateTargetGroup",  # the name: a duplicate is refused, the existing one adopted
    "CreateUserPool",  # no token, names not unique: never repeated; found by name and tag
    "CreateUserPoolClient",  # likewise: found by name in the tenant's own pool
    "CreateSecurityGroup",  # the name is unique per VPC
    "CreateRole",  # the name is unique
    "CreateRule",  # the priority is unique per listener
    "CreateLogGroup",  # the name is unique
)
# The journal names a REST call by method and path.
REST_NAMES = {"POST /2015-02-01/access-points": "CreateAccessPoint"}



@pytest.fixture
def impatient(settings: Settings) -> Context:
    """A tenant whose clients wait READ_TIMEOUT seconds for an answer (the setting)."""
    short = settings.model_copy(update={"aws_read_timeout_seconds": READ_TIMEOUT})
    tenant = f"t{uuid.uuid4().hex[:10]}"
    return engine.make_context(namespace="it", name=tenant, spec={"tenantId": tenant},
                               settings=short, clients=Clients(short), ids={})


def test_a_repeated_create_access_point_names_the_one_the_first_made(
    endpoint: str, settings: Settings
) -> None:
    efs = boto3.client("efs")
    token = uuid.uuid4().hex
    first = efs.create_access_point(ClientToken=token, FileSystemId=settings.file_system_id)
    try:
        with pytest.raises(ClientError) as caught:
            efs.create_access_point(ClientToken=token, FileSystemId=settings.file_system_id)
        response = caught.value.response
        assert response["Error"]["Code"] == "AccessPointAlreadyExists"
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 409
        assert response["AccessPointId"] == first["AccessPointId"]
        other = efs.create_access_point(ClientToken=uuid.uuid4().hex,
                                        FileSystemId=settings.file_system_id)
        efs.delete_access_point(AccessPointId=other["AccessPointId"])
    finally:
        efs.delete_access_point(AccessPointId=first["AccessPointId"])


def _one_of_each(ctx: Context) -> dict[str, int]:
    """How many of each resource the tenant has, counted in AWS by name or tag."""
    names, settings = ctx.names, ctx.settings
    idp = boto3.client("cognito-idp")
    pools = [p["Id"] for p in idp.list_user_pools(MaxResults=60)["UserPools"]
             if p["Name"] == names.user_pool]
    env_tag = next(k for k in ctx.tags if k.endswith("/environment"))
    aps = [ap for ap in boto3.client("efs").describe_access_points(
        FileSystemId=settings.file_system_id)["AccessPoints"]
        if {"Key": env_tag, "Value": ctx.tags[env_tag]} in ap.get("Tags", [])]
    secrets = boto3.client("secretsmanager").list_secrets(
        Filters=[{"Key": "name", "Values": [names.db_secret]}])["SecretList"]
    groups = boto3.client("elbv2").describe_target_groups()["TargetGroups"]
    rules = boto3.client("elbv2").describe_rules(ListenerArn=ctx.ids["listenerArn"])["Rules"]
    services = boto3.client("ecs").describe_services(
        cluster=settings.cluster_name, services=[names.service])["services"]
    sgs = boto3.client("ec2").describe_security_groups(
        Filters=[{"Name": "group-name", "Values": [names.security_group]}])["SecurityGroups"]
    return {
        "service": sum(s["status"] == "ACTIVE" for s in services),
        "access point": len(aps),
        "db secret": sum(s["Name"] == names.db_secret for s in secrets),
        "target group": sum(g["TargetGroupName"] == names.target_group for g in groups),
        "user pool": len(pools),
        "app client": sum(len(idp.list_user_pool_clients(UserPoolId=p)["UserPoolClients"])
                          for p in pools),
        "listener rule": sum(r["Actions"][0].get("TargetGroupArn") == ctx.ids["targetGroupArn"]
                             for r in rules if r["Actions"]),
        "security group": len(sgs),
        "task definition": len(boto3.client("ecs").list_task_definitions(
            familyPrefix=names.task_family, status="ACTIVE")["taskDefinitionArns"]),
    }


def test_creates_whose_answers_are_lost_make_exactly_one_of_each(
    endpoint: str, impatient: Context
) -> None:
    ctx, resources = impatient, engine.default_resources()
    since = time.time()
    set_aws_faults(endpoint, rate_limits="off", slow_first=1, slow_seconds=HELD,
                   slow_actions=[*CREATES, "RegisterTaskDefinition"])
    try:
        outcome = engine.converge(ctx, resources)
        deadline = time.monotonic() + 240
        while not (outcome.ready or outcome.failure) and time.monotonic() < deadline:
            time.sleep(0.5)
            outcome = engine.converge(ctx, resources)
        held = aws_fault_state(endpoint)["injected"]
        calls = Counter(REST_NAMES.get(e.action, e.action)
                        for e in read_journal(endpoint, since) if e.write)
    finally:
        reset_aws_faults(endpoint)
    try:
        assert outcome.failure is None, outcome.failure
        assert outcome.ready, outcome.conditions
        for action in CREATES:
            assert held.get(f"slow {action}") == 1, (action, held)
        # The repeated ones were sent again; the two never repeated were each sent once,
        # and the next pass found what they made.
        for action in set(CREATES) - {"CreateUserPool", "CreateUserPoolClient"}:
            assert calls[action] >= 2, (action, calls)
        assert calls["CreateUserPool"] == calls["CreateUserPoolClient"] == 1, calls
        counts = _one_of_each(ctx)
        assert counts == dict.fromkeys(counts, 1), counts
    finally:
        assert roll_back_settled(ctx, resources)
    assert leftovers(ctx) == []
