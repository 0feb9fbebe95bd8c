"""The tenant's IAM task role against moto: what create makes, policy drift, delete."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import MakeCtx
from wpenv.errors import TransientError
from wpenv.reconcilers.access_point import AccessPoint
from wpenv.reconcilers.base import MISSING, Context
from wpenv.reconcilers.task_role import (
    POLICY_NAME,
    TaskRole,
    desired_trust_policy,
    parse_document,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def ctx(make_ctx: MakeCtx) -> Iterator[Context]:
    """A fresh tenant with its access point (made first, as the engine orders them)."""
    context = make_ctx()
    access_point = AccessPoint(chown=False)
    access_point.create(context, access_point.observe(context))
    yield context
    TaskRole().ensure_absent(context)
    access_point.ensure_absent(context)


def test_create_makes_the_role_the_plan_describes(ctx: Context) -> None:
    resource = TaskRole()
    resource.create(ctx, MISSING)
    arn = ctx.ids["taskRoleArn"]
    assert arn.endswith(f":role/{ctx.names.task_role}")
    iam = ctx.clients.iam
    role = iam.get_role(RoleName=ctx.names.task_role)["Role"]
    assert parse_document(role["AssumeRolePolicyDocument"]) == desired_trust_policy()
    assert {t["Key"]: t["Value"] for t in role["Tags"]} == ctx.tags
    assert iam.list_role_policies(RoleName=ctx.names.task_role)["PolicyNames"] == [POLICY_NAME]
    stored = parse_document(
        iam.get_role_policy(RoleName=ctx.names.task_role, PolicyName=POLICY_NAME)[
            "PolicyDocument"
        ]
    )
    text = json.dumps(stored)
    assert ctx.ids["accessPointArn"] in text
    assert "secretsmanager" not in text and "logs:" not in text  # the execution role's
    (item,) = [
        f for f in resource.managed(ctx.clients, ctx.settings) if f.id == ctx.names.task_role
    ]
    assert item.tags == ctx.tags and item.details["arn"] == arn


def test_a_lost_status_is_stale_until_the_access_point_is_known(
    ctx: Context, make_ctx: MakeCtx
) -> None:
    resource = TaskRole()
    resource.create(ctx, MISSING)
    fresh = make_ctx(tenant=ctx.names.tenant)  # a restarted operator with a lost status
    again = resource.observe(fresh)
    assert again.exists and again.ids == {"taskRoleArn": ctx.ids["taskRoleArn"]}
    assert not again.up_to_date  # cannot judge the policy before the access point is found
    fresh.remember({"accessPointArn": ctx.ids["accessPointArn"]})
    assert resource.observe(fresh).up_to_date


def test_create_waits_for_the_access_point(make_ctx: MakeCtx) -> None:
    ctx = make_ctx()
    with pytest.raises(TransientError) as raised:
        TaskRole().create(ctx, TaskRole().observe(ctx))
    assert raised.value.reason == "WaitingForAccessPoint"
    assert not TaskRole().observe(ctx).exists


def test_widened_policy_and_extra_policy_are_stale_and_update_repairs(ctx: Context) -> None:
    resource = TaskRole()
    resource.create(ctx, resource.observe(ctx))
    iam = ctx.clients.iam
    name = ctx.names.task_role
    everything = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}],
    }
    for policy_name in (POLICY_NAME, "by-hand"):
        iam.put_role_policy(
            RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(everything)
        )
    ec2_trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                       "Action": "sts:AssumeRole"}],
    }
    iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(ec2_trust))

    observed = resource.observe(ctx)
    assert observed.exists and not observed.up_to_date
    for what in ("trust policy", "inline policy", "extra inline policies"):
        assert what in observed.detail
    resource.update(ctx, observed)

    assert resource.observe(ctx).up_to_date
    assert iam.list_role_policies(RoleName=name)["PolicyNames"] == [POLICY_NAME]
    role = iam.get_role(RoleName=name)["Role"]
    assert parse_document(role["AssumeRolePolicyDocument"]) == desired_trust_policy()


def test_delete_removes_attached_policies_too(ctx: Context) -> None:
    resource = TaskRole()
    resource.create(ctx, resource.observe(ctx))
    iam = ctx.clients.iam
    policy_arn = iam.create_policy(
        PolicyName=f"{ctx.names.task_role}-extra",
        PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}],
        }),
    )["Policy"]["Arn"]
    try:
        iam.attach_role_policy(RoleName=ctx.names.task_role, PolicyArn=policy_arn)
        resource.ensure_absent(ctx)
        assert not resource.observe(ctx).exists
    finally:
        iam.delete_policy(PolicyArn=policy_arn)
    with pytest.raises(ClientError):
        iam.get_role(RoleName=ctx.names.task_role)


def test_delete_removes_the_role_from_instance_profiles(ctx: Context) -> None:
    resource = TaskRole()
    resource.create(ctx, resource.observe(ctx))
    iam = ctx.clients.iam
    profile = f"{ctx.names.task_role}-profile"
    iam.create_instance_profile(InstanceProfileName=profile)
    try:
        iam.add_role_to_instance_profile(InstanceProfileName=profile,
                                         RoleName=ctx.names.task_role)
        resource.ensure_absent(ctx)
        assert not resource.observe(ctx).exists
        roles = iam.get_instance_profile(InstanceProfileName=profile)["InstanceProfile"]["Roles"]
        assert roles == []
    finally:
        iam.delete_instance_profile(InstanceProfileName=profile)


def test_the_role_carries_the_boundary_and_a_lost_one_is_put_back(ctx: Context) -> None:
    """Created under the platform's boundary; removed by hand, it is stale and restored."""
    boundary = ctx.settings.role_permissions_boundary_arn
    assert boundary.endswith(":policy/wpenv-tenant-boundary"), "the platform exports it"
    resource = TaskRole()
    resource.create(ctx, resource.observe(ctx))
    iam = ctx.clients.iam
    role = iam.get_role(RoleName=ctx.names.task_role)["Role"]
    assert role["PermissionsBoundary"]["PermissionsBoundaryArn"] == boundary

    iam.delete_role_permissions_boundary(RoleName=ctx.names.task_role)  # by someone else
    observed = resource.observe(ctx)
    assert not observed.up_to_date and "permissions boundary" in observed.detail
    resource.update(ctx, observed)
    role = iam.get_role(RoleName=ctx.names.task_role)["Role"]
    assert role["PermissionsBoundary"]["PermissionsBoundaryArn"] == boundary
    assert resource.observe(ctx).up_to_date


def test_the_platform_refuses_an_operator_role_without_the_boundary(ctx: Context) -> None:
    """What the operator's IAM policy makes AWS answer: AccessDenied, an explicit deny."""
    unbounded = ctx.settings.model_copy(update={"role_permissions_boundary_arn": ""})
    plain = Context(**{**vars(ctx), "settings": unbounded, "ids": dict(ctx.ids)})
    with pytest.raises(ClientError) as refused:
        TaskRole().create(plain, TaskRole().observe(plain))
    error = refused.value.response["Error"]
    assert error["Code"] == "AccessDenied"
    assert error["Message"].endswith(
        f":role/{ctx.names.task_role} with an explicit deny in an identity-based policy"
    )
    assert not TaskRole().observe(ctx).exists
