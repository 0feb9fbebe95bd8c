"""The tenant's security group: its tasks accept traffic from the shared ALB and nothing else.

Ingress is owned exactly: one TCP rule for the container port from the ALB's security
group. Any other ingress rule (say, port 22 opened by hand) makes the group stale and the
next update revokes it. Egress is left at the AWS default (all traffic out), which the
tasks need to reach RDS, EFS, Secrets Manager and the image registry.

Group names are unique per VPC, so a restarted operator finds the group by recorded id,
then by VPC + name; create adopts a group that already exists.

A Fargate task's network interface carries the group and is released only some time after
the task stopped, so right after the service is deleted EC2 refuses to delete the group
(DependencyViolation "resource sg-... has a dependent object"). On that call only, that
code means "in use a little longer": a TransientError, and the teardown tries again later.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

from botocore.exceptions import ClientError

from wpenv import aws, reasons
from wpenv.errors import TransientError
from wpenv.plan import TAG_MANAGED_BY, tag_dict, tag_diff, tag_list
from wpenv.reconcilers.base import Context, Found, Observation, Resource
from wpenv.settings import Settings

log = logging.getLogger(__name__)

NOT_FOUND = "InvalidGroup.NotFound"
DUPLICATE = "InvalidGroup.Duplicate"
DUPLICATE_RULE = "InvalidPermission.Duplicate"
RULE_NOT_FOUND = "InvalidPermission.NotFound"
IN_USE = "DependencyViolation"  # DeleteSecurityGroup while interfaces still use the group

DESCRIPTION = "wpenv tenant {tenant}: WordPress tasks, reachable only from the shared ALB"
RULE_DESCRIPTION = "WordPress from the shared ALB"
STALE_RULES = "security group {id}: {extra} unexpected ingress rule(s), {missing} missing"
STALE_TAGS = "security group {id} lacks tags {keys}"
IN_USE_MESSAGE = (
    "security group {id} is still used by network interfaces (of tasks that stopped a moment "
    "ago); deleting it again shortly"
)

# One ingress grant, flattened: (protocol, from port, to port, source kind, source).
Rule = tuple[str, int | None, int | None, str, str]

_SOURCES = (
    ("IpRanges", "CidrIp"),
    ("Ipv6Ranges", "CidrIpv6"),
    ("PrefixListIds", "PrefixListId"),
    ("UserIdGroupPairs", "GroupId"),
)


def desired_ingress(ctx: Context) -> list[dict[str, Any]]:
    """The complete ingress of the group, as `AuthorizeSecurityGroupIngress` takes it."""
    port = ctx.settings.container_port
    return [
        {
            "IpProtocol": "tcp",
            "FromPort": port,
            "ToPort": port,
            "UserIdGroupPairs": [
                {"GroupId": ctx.settings.alb_security_group_id, "Description": RULE_DESCRIPTION}
            ],
        }
    ]


def flatten(permissions: list[dict[str, Any]]) -> set[Rule]:
    """IpPermissions as a set of single grants, so two rule lists compare exactly."""
    rules: set[Rule] = set()
    for perm in permissions:
        proto = str(perm.get("IpProtocol"))
        from_port = perm.get("FromPort")
        to_port = perm.get("ToPort")
        if proto == "-1":  # all traffic: AWS may or may not echo ports for it
            from_port = to_port = None
        for list_key, id_key in _SOURCES:
            for source in perm.get(list_key) or []:
                rules.add((proto, from_port, to_port, list_key, str(source.get(id_key))))
    return rules


def to_permission(rule: Rule) -> dict[str, Any]:
    """One flattened grant back in the IpPermissions shape (for revoke/authorize)."""
    proto, from_port, to_port, list_key, source = rule
    id_key = dict(_SOURCES)[list_key]
    perm: dict[str, Any] = {"IpProtocol": proto, list_key: [{id_key: source}]}
    if from_port is not None:
        perm["FromPort"] = from_port
    if to_port is not None:
        perm["ToPort"] = to_port
    return perm


def rule_differences(ctx: Context, group: dict[str, Any]) -> tuple[set[Rule], set[Rule]]:
    """(extra rules to revoke, missing rules to authorize); both empty when up to date."""
    have = flatten(group.get("IpPermissions") or [])
    want = flatten(desired_ingress(ctx))
    return have - want, want - have


def missing_tags(ctx: Context, group: dict[str, Any]) -> dict[str, str]:
    """Our tags the group lacks or carries with another value."""
    return tag_diff(ctx.tags, group)


def _in_vpc(groups: list[dict[str, Any]], vpc_id: str) -> dict[str, Any] | None:
    return next((dict(g) for g in groups if g.get("VpcId") == vpc_id), None)


# The shared cache's listing: the operator's groups in the shared VPC, by the managed-by
# tag filter of DescribeSecurityGroups; a group that lost the tag is read on its own.
LISTED = "ec2:DescribeSecurityGroups"


def managed_groups(clients: Any, settings: Settings) -> dict[str, dict[str, Any]]:
    """Group id -> group, for every group in the shared VPC with our managed-by tag."""
    pages = clients.ec2.get_paginator("describe_security_groups").paginate(
        Filters=[
            {"Name": "vpc-id", "Values": [settings.vpc_id]},
            {"Name": f"tag:{TAG_MANAGED_BY}", "Values": [settings.operator_name]},
        ]
    )
    return {str(g["GroupId"]): dict(g) for page in pages for g in page.get("SecurityGroups", [])}


class SecurityGroup(
    Resource, group="Network", ids=("securityGroupId",), gone={NOT_FOUND}, retainable=True
):
    """Security group of one tenant's tasks (condition group "Network")."""

    def find_by_id(self, ctx: Context, recorded: str) -> dict[str, Any] | None:
        """The recorded group, if it is still in the shared VPC."""
        def direct() -> dict[str, Any] | None:
            groups = ctx.clients.ec2.describe_security_groups(GroupIds=[recorded])
            return _in_vpc(groups["SecurityGroups"], ctx.settings.vpc_id)

        found: dict[str, Any] | None = self.cached(
            ctx, LISTED, ctx.settings.vpc_id, recorded,
            bulk=lambda: managed_groups(ctx.clients, ctx.settings), direct=direct,
        )
        return found

    def find_by_name(self, ctx: Context) -> dict[str, Any] | None:
        """Group names are unique per VPC."""
        groups = ctx.clients.ec2.describe_security_groups(
            Filters=[
                {"Name": "vpc-id", "Values": [ctx.settings.vpc_id]},
                {"Name": "group-name", "Values": [ctx.names.security_group]},
            ]
        )["SecurityGroups"]
        return dict(groups[0]) if groups else None

    def inspect(self, ctx: Context, found: dict[str, Any]) -> Observation:
        """Stale when its ingress is not exactly ours or tags are missing."""
        extra, missing = rule_differences(ctx, found)
        tags = missing_tags(ctx, found)
        detail = ""
        if extra or missing:
            detail = STALE_RULES.format(id=found["GroupId"], extra=len(extra), missing=len(missing))
        elif tags:
            detail = STALE_TAGS.format(id=found["GroupId"], keys=sorted(tags))
        return Observation(
            exists=True,
            up_to_date=not (extra or missing or tags),
            ids={"securityGroupId": str(found["GroupId"])},
            detail=detail,
            found=found,
        )

    def create(self, ctx: Context, observed: Observation) -> None:
        """Create (or adopt) the group, record its id, then grant the ALB's ingress."""
        try:
            group_id = ctx.clients.ec2.create_security_group(
                GroupName=ctx.names.security_group,
                Description=DESCRIPTION.format(tenant=ctx.names.tenant),
                VpcId=ctx.settings.vpc_id,
                TagSpecifications=[{"ResourceType": "security-group", "Tags": ctx.tag_list}],
            )["GroupId"]
        except ClientError as exc:
            if aws.error_code(exc) != DUPLICATE:
                raise
            group = self.find_by_name(ctx)  # created by a pass we do not remember
            if group is None:
                raise
        else:
            log.info("created security group %s for %s", group_id, ctx.names.tenant)
            group = {"GroupId": group_id, "Tags": ctx.tag_list}
        ctx.remember({"securityGroupId": str(group["GroupId"])})
        self._converge(ctx, group)

    def update(self, ctx: Context, observed: Observation) -> None:
        """Revoke unexpected ingress, authorize the missing rule, restore our tags."""
        self._converge(ctx, observed.found)

    def _converge(self, ctx: Context, group: dict[str, Any]) -> None:
        ec2 = ctx.clients.ec2
        group_id = group["GroupId"]
        extra, missing = rule_differences(ctx, group)
        if extra:
            try:
                ec2.revoke_security_group_ingress(
                    GroupId=group_id, IpPermissions=[to_permission(r) for r in sorted(extra)]
                )
            except ClientError as exc:
                if aws.error_code(exc) != RULE_NOT_FOUND:
                    raise
            log.info("revoked %d unexpected ingress rule(s) from %s", len(extra), group_id)
        if missing:
            try:
                ec2.authorize_security_group_ingress(
                    GroupId=group_id, IpPermissions=desired_ingress(ctx)
                )
            except ClientError as exc:
                if aws.error_code(exc) != DUPLICATE_RULE:
                    raise
        tags = missing_tags(ctx, group)
        if tags:
            self._tag(ctx.clients, group_id, tags)

    @staticmethod
    def _tag(clients: Any, group_id: str, tags: Mapping[str, str]) -> None:
        clients.ec2.create_tags(Resources=[group_id], Tags=tag_list(tags))

    def remove(self, clients: Any, settings: Settings, found: dict[str, Any]) -> None:
        """DeleteSecurityGroup; still in use (DependencyViolation) is a TransientError."""
        group_id = str(found["GroupId"])
        try:
            clients.ec2.delete_security_group(GroupId=group_id)
        except ClientError as exc:
            if aws.error_code(exc) != IN_USE:
                raise
            raise TransientError(reasons.SECURITY_GROUP_IN_USE,
                                 IN_USE_MESSAGE.format(id=group_id)) from exc
        log.info("deleted security group %s", group_id)

    def tag(self, ctx: Context, recorded: str, tags: Mapping[str, str]) -> None:
        """CreateTags on the recorded group."""
        self._tag(ctx.clients, recorded, tags)

    def managed(self, clients: Any, settings: Settings) -> Iterator[Found]:
        """Every group with our managed-by tag (a tag filter does the work server-side)."""
        pages = clients.ec2.get_paginator("describe_security_groups").paginate(
            Filters=[{"Name": f"tag:{TAG_MANAGED_BY}", "Values": [settings.operator_name]}]
        )
        for page in pages:
            yield from (self._found(group) for group in page.get("SecurityGroups", []))

    @staticmethod
    def _found(group: dict[str, Any]) -> Found:
        return Found(
            str(group["GroupId"]), dict(group), tag_dict(group.get("Tags")),
            {"name": group.get("GroupName"), "vpcId": group.get("VpcId")},
        )

    def refresh(self, clients: Any, settings: Settings, item: Found) -> Found | None:
        """The group with its current tags; None when gone."""
        try:
            groups = clients.ec2.describe_security_groups(GroupIds=[item.id])["SecurityGroups"]
        except ClientError as exc:
            if self.is_gone(exc):
                return None
            raise
        return self._found(dict(groups[0])) if groups else None
