"""The tenant's ALB target group: where its listener rule sends traffic, ECS registers tasks.

One per tenant, named `ctx.names.target_group`. Lookup is by recorded ARN, then by that
name: the name is unique per account and region, and neither AWS (only when settings
match) nor moto (never) makes `CreateTargetGroup` an idempotent adopt, so a restarted
operator must find the group before it tries to create one.
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import ClientError

from wpenv import aws
from wpenv.reconcilers.base import MISSING, Context, Observation

log = logging.getLogger(__name__)

NOT_FOUND = "TargetGroupNotFound"
DUPLICATE = "DuplicateTargetGroupName"

HEALTH_CHECK_PATH = "/wp-login.php"  # answers 200 on a fresh install and once installed
HEALTH_CHECK_CODES = "200-399"  # WordPress redirects to the installer before setup
HEALTH_CHECK_INTERVAL = 15
HEALTHY_THRESHOLD = 2

IMMUTABLE_DRIFT = (
    "target group {name} has {field}={actual!r}, the settings want {wanted!r}; it cannot be "
    "changed in place: delete the target group to have it re-created"
)


def desired_health_check() -> dict[str, Any]:
    """The health check settings we own, in the shape `ModifyTargetGroup` takes."""
    return {
        "HealthCheckProtocol": "HTTP",
        "HealthCheckPath": HEALTH_CHECK_PATH,
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
        **desired_health_check(),
        "Tags": ctx.tag_list,
    }


def health_check_differences(observed: dict[str, Any]) -> list[str]:
    """Names of the health check fields that differ from what we set (empty: up to date).

    A field the API did not echo back counts as matching, so an emulator that drops one
    does not make the group look stale forever.
    """
    wanted = desired_health_check()
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


def find_target_group(ctx: Context) -> dict[str, Any] | None:
    """The tenant's target group: by recorded ARN, then by its deterministic name."""
    elbv2 = ctx.clients.elbv2
    arn = ctx.ids.get("targetGroupArn")
    if arn:
        try:
            groups = elbv2.describe_target_groups(TargetGroupArns=[arn])["TargetGroups"]
        except ClientError as exc:
            if not aws.is_not_found(exc, NOT_FOUND):
                raise
        else:
            if groups:
                return dict(groups[0])
    try:
        groups = elbv2.describe_target_groups(Names=[ctx.names.target_group])["TargetGroups"]
    except ClientError as exc:
        if aws.is_not_found(exc, NOT_FOUND):
            return None
        raise
    return dict(groups[0]) if groups else None


class TargetGroup:
    """ALB target group of one tenant (condition group "Routing")."""

    kind = "TargetGroup"
    group = "Routing"

    def observe(self, ctx: Context) -> Observation:
        """Find the group and compare the health check settings we own."""
        found = find_target_group(ctx)
        if found is None:
            return MISSING
        diffs = health_check_differences(found)
        detail = _immutable_drift(ctx, found)
        if diffs:
            detail = "; ".join(filter(None, [f"health check differs: {', '.join(diffs)}", detail]))
        return Observation(
            exists=True,
            up_to_date=not diffs,
            ids={"targetGroupArn": found["TargetGroupArn"]},
            ready=True,
            detail=detail,
            facts={
                "targetGroupName": found.get("TargetGroupName", ctx.names.target_group),
                "port": found.get("Port"),
                "loadBalancerArns": list(found.get("LoadBalancerArns", [])),
            },
        )

    def create(self, ctx: Context) -> None:
        """Create the group, or adopt the one a previous pass (or a race) created."""
        found = find_target_group(ctx)
        if found is None:
            try:
                created = ctx.clients.elbv2.create_target_group(**desired_target_group(ctx))
            except ClientError as exc:
                if aws.error_code(exc) != DUPLICATE:
                    raise
                found = find_target_group(ctx)  # created concurrently: adopt it
                if found is None:
                    raise
            else:
                found = dict(created["TargetGroups"][0])
                log.info("created target group %s", ctx.names.target_group)
        ctx.remember({"targetGroupArn": found["TargetGroupArn"]})

    def update(self, ctx: Context, observed: Observation) -> None:
        """Put the health check back to what we set (the only mutable part we own)."""
        arn = observed.ids.get("targetGroupArn") or ctx.ids.get("targetGroupArn")
        if not arn:
            found = find_target_group(ctx)
            if found is None:
                return
            arn = found["TargetGroupArn"]
        ctx.clients.elbv2.modify_target_group(TargetGroupArn=arn, **desired_health_check())
        ctx.remember({"targetGroupArn": arn})

    def delete(self, ctx: Context) -> None:
        """Delete the group; ResourceInUse (a rule still forwards here) propagates."""
        found = find_target_group(ctx)
        if found is None:
            return
        try:
            ctx.clients.elbv2.delete_target_group(TargetGroupArn=found["TargetGroupArn"])
        except ClientError as exc:
            if not aws.is_not_found(exc, NOT_FOUND):
                raise
        log.info("deleted target group %s", ctx.names.target_group)
