"""The tenant's task execution role against the platform: its policy, drift, its own roles."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import MakeCtx, aws_calls
from wpenv.errors import TransientError
from wpenv.plan import TAG_RETAINED
from wpenv.reconcilers.base import MISSING, Context
from wpenv.reconcilers.execution_role import ExecutionRole
from wpenv.reconcilers.iam_role import POLICY_NAME, desired_trust_policy, parse_document
from wpenv.reconcilers.task_role import TaskRole

pytestmark = pytest.mark.e2e


@pytest.fixture
def ctx(make_ctx: MakeCtx) -> Iterator[Context]:
    """A tenant with the secrets its container takes (plain boto3); all removed after."""
    context = make_ctx()
    secrets = context.clients.secretsmanager
    made = []
    for key, name in (("dbSecretArn", context.names.db_secret),
                      ("siteSecretArn", context.names.site_secret),
                      ("clientSecretArn", context.names.client_secret)):
        context.ids[key] = secrets.create_secret(Name=name, SecretString="{}")["ARN"]
        made.append(context.ids[key])
    yield context
    ExecutionRole().ensure_absent(context)
    for arn in made:
        secrets.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)


def _stored(ctx: Context) -> Any:
    answer = ctx.clients.iam.get_role_policy(RoleName=ctx.names.execution_role,
                                             PolicyName=POLICY_NAME)
    return parse_document(answer["PolicyDocument"])


def test_created_with_ecs_trust_its_tags_and_exactly_its_secrets(
    ctx: Context, make_ctx: MakeCtx
) -> None:
    resource = ExecutionRole()
    resource.create(ctx, MISSING)
    arn = ctx.ids["executionRoleArn"]
    assert arn.endswith(f":role/{ctx.names.execution_role}")
    iam = ctx.clients.iam
    role = iam.get_role(RoleName=ctx.names.execution_role)["Role"]
    assert parse_document(role["AssumeRolePolicyDocument"]) == desired_trust_policy()
    assert {t["Key"]: t["Value"] for t in role["Tags"]} == ctx.tags
    by_sid = {s["Sid"]: s for s in _stored(ctx)["Statement"]}
    assert sorted(by_sid["ReadOwnSecrets"]["Resource"]) == sorted(
        [ctx.ids["dbSecretArn"], ctx.ids["siteSecretArn"], ctx.ids["clientSecretArn"]]
    )
    assert by_sid["WriteOwnLogs"]["Resource"].endswith(f":log-group:{ctx.names.log_group}:*")
    with aws_calls(ctx.clients) as calls:
        assert resource.observe(ctx).up_to_date
    assert calls == ["GetRole", "ListRolePolicies", "GetRolePolicy"]  # an idle pass: reads
    resource.tag(ctx, arn, {TAG_RETAINED: "true"})  # deletionPolicy Retain
    tags = iam.list_role_tags(RoleName=ctx.names.execution_role)["Tags"]
    assert {"Key": TAG_RETAINED, "Value": "true"} in tags

    without = make_ctx(tenant=ctx.names.tenant, identity={"enabled": False})
    without.ids.update(ctx.ids)
    observed = resource.observe(without)  # single sign-on off: the client secret goes
    assert not observed.up_to_date
    resource.update(without, observed)
    statements = {s["Sid"]: s for s in _stored(ctx)["Statement"]}
    assert statements["ReadOwnSecrets"]["Resource"] == [ctx.ids["dbSecretArn"],
                                                        ctx.ids["siteSecretArn"]]


def test_waits_for_the_secrets_and_makes_nothing_meanwhile(make_ctx: MakeCtx) -> None:
    ctx = make_ctx()
    with pytest.raises(TransientError) as raised:
        ExecutionRole().create(ctx, ExecutionRole().observe(ctx))
    assert raised.value.reason == "WaitingForDependencies"
    assert not ExecutionRole().observe(ctx).exists


def test_a_widened_policy_or_a_new_secret_is_drift_and_update_repairs(ctx: Context) -> None:
    resource = ExecutionRole()
    resource.create(ctx, MISSING)
    everything = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}]}
    iam = ctx.clients.iam
    for name in (POLICY_NAME, "by-hand"):
        iam.put_role_policy(RoleName=ctx.names.execution_role, PolicyName=name,
                            PolicyDocument=json.dumps(everything))
    observed = resource.observe(ctx)
    assert "inline policy" in observed.detail and "extra inline policies" in observed.detail
    resource.update(ctx, observed)
    assert resource.observe(ctx).up_to_date
    assert iam.list_role_policies(RoleName=ctx.names.execution_role)["PolicyNames"] == [
        POLICY_NAME
    ]

    # The database secret re-created (a new random suffix): the role follows its new ARN.
    secrets = ctx.clients.secretsmanager
    secrets.delete_secret(SecretId=ctx.ids["dbSecretArn"], ForceDeleteWithoutRecovery=True)
    ctx.ids["dbSecretArn"] = secrets.create_secret(Name=ctx.names.db_secret,
                                                   SecretString="{}")["ARN"]
    observed = resource.observe(ctx)
    assert not observed.up_to_date
    resource.update(ctx, observed)
    assert ctx.ids["dbSecretArn"] in json.dumps(_stored(ctx))


def test_each_role_kind_lists_only_its_own_roles(ctx: Context) -> None:
    ExecutionRole().create(ctx, MISSING)
    task_names = {f.id for f in TaskRole().managed(ctx.clients, ctx.settings)}
    [mine] = [f for f in ExecutionRole().managed(ctx.clients, ctx.settings)
              if f.id == ctx.names.execution_role]
    assert ctx.names.execution_role not in task_names
    assert mine.tags == ctx.tags and mine.details["arn"] == ctx.ids["executionRoleArn"]
    ExecutionRole().remove_tolerant(ctx.clients, ctx.settings, mine.found)
    assert ExecutionRole().refresh(ctx.clients, ctx.settings, mine) is None
