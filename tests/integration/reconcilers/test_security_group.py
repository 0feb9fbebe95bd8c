"""The tenant's security group against moto: what create makes, exact ingress."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import MakeCtx
from wpenv.plan import TAG_TENANT
from wpenv.reconcilers.base import MISSING, Context
from wpenv.reconcilers.security_group import SecurityGroup, desired_ingress, flatten

pytestmark = pytest.mark.e2e

SSH_FROM_ANYWHERE = {
    "IpProtocol": "tcp",
    "FromPort": 22,
    "ToPort": 22,
    "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
}


def _groups(ctx: Context) -> list[dict[str, Any]]:
    found = ctx.clients.ec2.describe_security_groups(
        Filters=[
            {"Name": "vpc-id", "Values": [ctx.settings.vpc_id]},
            {"Name": "group-name", "Values": [ctx.names.security_group]},
        ]
    )["SecurityGroups"]
    return list(found)


@pytest.fixture
def ctx(make_ctx: MakeCtx) -> Iterator[Context]:
    """A fresh tenant whose security group is removed whatever the test did."""
    context = make_ctx()
    yield context
    SecurityGroup().ensure_absent(context)


def test_create_makes_the_group_the_plan_describes(ctx: Context) -> None:
    SecurityGroup().create(ctx, MISSING)
    (group,) = _groups(ctx)
    assert group["GroupId"] == ctx.ids["securityGroupId"]
    assert group["VpcId"] == ctx.settings.vpc_id
    assert flatten(group["IpPermissions"]) == {
        ("tcp", ctx.settings.container_port, ctx.settings.container_port,
         "UserIdGroupPairs", ctx.settings.alb_security_group_id),
    }
    assert flatten(group["IpPermissions"]) == flatten(desired_ingress(ctx))
    assert group["IpPermissionsEgress"]  # the default egress is left in place
    assert {t["Key"]: t["Value"] for t in group["Tags"]} == ctx.tags


def test_hand_added_rule_is_stale_and_update_removes_it(ctx: Context) -> None:
    resource = SecurityGroup()
    resource.create(ctx, resource.observe(ctx))
    group_id = ctx.ids["securityGroupId"]
    ctx.clients.ec2.authorize_security_group_ingress(
        GroupId=group_id, IpPermissions=[SSH_FROM_ANYWHERE]
    )

    observed = resource.observe(ctx)
    assert observed.exists and not observed.up_to_date
    resource.update(ctx, observed)

    assert resource.observe(ctx).up_to_date
    (group,) = _groups(ctx)
    assert flatten(group["IpPermissions"]) == flatten(desired_ingress(ctx))


def test_revoked_rule_and_tag_are_restored(ctx: Context) -> None:
    resource = SecurityGroup()
    resource.create(ctx, resource.observe(ctx))
    group_id = ctx.ids["securityGroupId"]
    ec2 = ctx.clients.ec2
    ec2.revoke_security_group_ingress(GroupId=group_id, IpPermissions=desired_ingress(ctx))
    ec2.delete_tags(Resources=[group_id], Tags=[{"Key": TAG_TENANT}])

    observed = resource.observe(ctx)
    assert observed.exists and not observed.up_to_date
    resource.update(ctx, observed)

    assert resource.observe(ctx).up_to_date
    (group,) = _groups(ctx)
    assert flatten(group["IpPermissions"]) == flatten(desired_ingress(ctx))
    assert {t["Key"]: t["Value"] for t in group["Tags"]} == ctx.tags
