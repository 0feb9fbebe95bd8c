"""The tenant's ALB target group: where its listener rule sends traffic, ECS registers tasks.

One per tenant, named `ctx.names.target_group`. Lookup is by recorded ARN, then by that
name: the name is unique per account and region, and neither AWS (only when settings
match) nor moto (never) makes `CreateTargetGroup` an idempotent adopt, so create adopts
on `DuplicateTargetGroupName`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from wpenv import aws
from wpenv.plan import TAG_MANAGED_BY, path_prefix, tag_dict, tag_list
from wpenv.reconcilers.base import Context, Found, Observation, Resource
from wpenv.settings import Settings

log = logging.getLogger(__name__)

NOT_FOUND = "TargetGroupNotFound"
DUPLICATE = "DuplicateTargetGroupName"
TAGS_PER_CALL = 20  # ELB DescribeTags accepts at most 20 ARNs

# Below the tenant's prefix, where WordPress lives (the ALB forwards paths unchanged):
# answers 200 on a fresh install and once installed.
HEALTH_CHECK_PAGE = "/wp-login.php"
HEALTH_CHECK_CODES = "200-399"  # WordPress redirects to the installer before setup
HEALTH_CHECK_INTERVAL = 15
HEALTHY_THRESHOLD = 2

IMMUTABLE_DRIFT = (
    "target group {name} has {field}={actual!r}, the settings want {wanted!r}; it cannot be "
    "changed in place: delete the target group to have it re-created"
)


# The shared cache's listing of every target group (wpenv.reconcilers.observations).
LISTED = "elasticloadbalancing:DescribeTargetGroups"


def health_check_path(ctx: Context) -> str:
    """`<prefix>/wp-login.php`: the login page of the tenant's WordPress (no I/O)."""
    return path_prefix(ctx.spec) + HEALTH_CHECK_PAGE


def desired_health_check(path: str) -> dict[str, Any]:
    """The health check settings we own, in the shape `ModifyTargetGroup` takes."""
    return {
        "HealthCheckProtocol": "HTTP",
        "HealthCheckPath": path,
        "HealthCheckIntervalSeconds": HEALTH_CHECK_INTERVAL,
        "HealthyThresholdCount": HEALTHY_THRESHOLD,
        "Matcher": {"HttpCode": HEALTH_CHECK_CODES},
    }


def desired_target_group(ctx: Context) -> dict[str, Any]:
    """The `CreateTargetGroup` arguments for this tenant (no I/O)."""
    return {
        "Name": ctx.names.target_group,
        "Protocol": "HTTP",
        "Port": ctx.settings.container_port,
        "VpcId": ctx.settings.vpc_id,
        "TargetType": "ip",  # Fargate tasks in awsvpc mode register by address
        "HealthCheckEnabled": True,
        **desired_health_check(health_check_path(ctx)),
        "Tags": ctx.tag_list,
    }


def health_check_differences(observed: dict[str, Any], path: str) -> list[str]:
    """Names of the health check fields that differ from what we set (empty: up to date).

    A field the API did not echo back counts as matching, so an emulator that drops one
    does not make the group look stale forever.
    """
    wanted = desired_health_check(path)
    diffs: list[str] = [
        key
        for key in ("HealthCheckProtocol", "HealthCheckPath", "HealthCheckIntervalSeconds")
        if key in observed and observed[key] != wanted[key]
    ]
    if int(observed.get("HealthyThresholdCount", HEALTHY_THRESHOLD)) != HEALTHY_THRESHOLD:
        diffs.append("HealthyThresholdCount")
    matcher = observed.get("Matcher") or {}
    if matcher.get("HttpCode", HEALTH_CHECK_CODES) != HEALTH_CHECK_CODES:
        diffs.append("Matcher")
    return diffs


def _immutable_drift(ctx: Context, observed: dict[str, Any]) -> str:
    """A note when a field that needs a new target group differs (port, VPC, type)."""
    wanted = desired_target_group(ctx)
    for key in ("Protocol", "Port", "VpcId", "TargetType"):
        if key in observed and observed[key] != wanted[key]:
            return IMMUTABLE_DRIFT.format(
                name=ctx.names.target_group, field=key, actual=observed[key], wanted=wanted[key]
            )
    return ""


def elb_tags(clients: Any, arns: Sequence[str]) -> dict[str, dict[str, str]]:
    """ARN -> tags of load balancer resources (rules, target groups), 20 per DescribeTags."""
    found: dict[str, dict[str, str]] = {}
    for start in range(0, len(arns), TAGS_PER_CALL):
        batch = list(arns[start : start + TAGS_PER_CALL])
        for description in clients.elbv2.describe_tags(ResourceArns=batch)["TagDescriptions"]:
            found[str(description["ResourceArn"])] = tag_dict(description.get("Tags"))
    return found


def all_target_groups(clients: Any) -> dict[str, dict[str, Any]]:
    """ARN -> target group, for every target group of the account and region (pages of
    up to 400: DescribeTargetGroups' PageSize)."""
    pages = clients.elbv2.get_paginator("describe_target_groups").paginate(
        PaginationConfig={"PageSize": 400}
    )
    return {str(g["TargetGroupArn"]): dict(g) for page in pages for g in page["TargetGroups"]}


def add_elb_tags(clients: Any, arn: str, tags: Mapping[str, str]) -> None:
    """AddTags on one load balancer resource."""
    clients.elbv2.add_tags(ResourceArns=[arn], Tags=tag_list(tags))


class TargetGroup(
    Resource, group="Routing", ids=("targetGroupArn",), gone={NOT_FOUND}, retainable=True
):
    """ALB target group of one tenant (condition group "Routing")."""

    def find_by_id(self, ctx: Context, recorded: str) -> dict[str, Any] | None:
        """The recorded group (DescribeTargetGroups by ARN)."""
        def direct() -> dict[str, Any] | None:
            groups = ctx.clients.elbv2.describe_target_groups(TargetGroupArns=[recorded])
            return next((dict(g) for g in groups["TargetGroups"]), None)

        found: dict[str, Any] | None = self.cached(
            ctx, LISTED, "", recorded, bulk=lambda: all_target_groups(ctx.clients),
            direct=direct,
        )
        return found

    def find_by_name(self, ctx: Context) -> dict[str, Any] | None:
        """Target group names are unique per account and region."""
        try:
            groups = ctx.clients.elbv2.describe_target_groups(Names=[ctx.names.target_group])
        except ClientError as exc:
            if self.is_gone(exc):
                return None
            raise
        return next((dict(g) for g in groups["TargetGroups"]), None)

    def inspect(self, ctx: Context, found: dict[str, Any]) -> Observation:
        """Compare the health check settings we own; note fields that cannot change."""
        diffs = health_check_differences(found, health_check_path(ctx))
        detail = _immutable_drift(ctx, found)
        if diffs:
            detail = "; ".join(filter(None, [f"health check differs: {', '.join(diffs)}", detail]))
        return Observation(
            exists=True,
            up_to_date=not diffs,
            ids={"targetGroupArn": found["TargetGroupArn"]},
            ready=True,
            detail=detail,
            found=found,
        )

    def create(self, ctx: Context, observed: Observation) -> None:
        """Create the group, or adopt the one a previous pass (or a race) created."""
        group = observed.found
        if group is None:
            try:
                created = ctx.clients.elbv2.create_target_group(**desired_target_group(ctx))
            except ClientError as exc:
                if aws.error_code(exc) != DUPLICATE:
                    raise
                group = self.find_by_name(ctx)  # created concurrently: adopt it
                if group is None:
                    raise
            else:
                group = dict(created["TargetGroups"][0])
                log.info("created target group %s", ctx.names.target_group)
        ctx.remember({"targetGroupArn": group["TargetGroupArn"]})

    def update(self, ctx: Context, observed: Observation) -> None:
        """Put the health check back to what we set (the only mutable part we own)."""
        arn = observed.found["TargetGroupArn"]
        wanted = desired_health_check(health_check_path(ctx))
        ctx.clients.elbv2.modify_target_group(TargetGroupArn=arn, **wanted)
        ctx.remember({"targetGroupArn": arn})

    def remove(self, clients: Any, settings: Settings, found: dict[str, Any]) -> None:
        """DeleteTargetGroup; ResourceInUse (a rule still forwards here) propagates."""
        clients.elbv2.delete_target_group(TargetGroupArn=found["TargetGroupArn"])
        log.info("deleted target group %s", found.get("TargetGroupName", found["TargetGroupArn"]))

    def tag(self, ctx: Context, recorded: str, tags: Mapping[str, str]) -> None:
        """AddTags on the recorded group."""
        add_elb_tags(ctx.clients, recorded, tags)

    def managed(self, clients: Any, settings: Settings) -> Iterator[Found]:
        """Every target group of the account and region with our managed-by tag."""
        groups = all_target_groups(clients)
        for arn, tags in elb_tags(clients, list(groups)).items():
            if tags.get(TAG_MANAGED_BY) == settings.operator_name:
                yield self._found(groups[arn], tags)

    @staticmethod
    def _found(group: dict[str, Any], tags: Mapping[str, str]) -> Found:
        return Found(
            str(group["TargetGroupArn"]), group, dict(tags),
            {"name": group.get("TargetGroupName")},
        )

    def refresh(self, clients: Any, settings: Settings, item: Found) -> Found | None:
        """The group with its current tags; None when it is gone."""
        try:
            groups = clients.elbv2.describe_target_groups(TargetGroupArns=[item.id])
            tags = elb_tags(clients, [item.id]).get(item.id, {})
        except ClientError as exc:
            if self.is_gone(exc):
                return None
            raise
        group = next((dict(g) for g in groups["TargetGroups"]), None)
        return None if group is None else self._found(group, tags)
