"""CPU auto scaling of the tenant's ECS service (HLD 5.3): a scalable target and its policy.

One resource to the engine, two objects in Application Auto Scaling: the scalable target
(`service/<cluster>/<service>`, dimension `ecs:service:DesiredCount`, bounds from
`spec.autoscaling`) and one target-tracking policy on average CPU. Both APIs are upserts,
so create and update are the same calls; only what differs is written.

While the environment is suspended the scaler must not exist at all: with a minimum of
one or more it would start tasks again as soon as the service went to zero. Deregistering
is the simple and complete answer, and resuming registers it again. Bounds of 0/0 would
hold the service at zero too, but keep a target, a policy and its CloudWatch alarms (billed,
evaluating a service with no tasks) for nothing, and give the target two desired shapes;
`SuspendedState` keeps the same leftovers and must not be forgotten on resume. The engine
removes unwanted resources after the wanted ones converged, so the service reaches zero a
moment before the target goes; a task the scaler might start in that moment is stopped on
the next pass.
Delete removes the policy explicitly before the target: AWS would remove it with the
target, moto does not. The scaler has no orphan listing of its own: the Service's `remove`
drops the scalable target of a service it deletes.

Tags go on the target when it is registered (`Tags`; later changes would need
TagResource). They are not compared afterwards: moto accepts `Tags` but neither stores
them nor implements ListTagsForResource, so a tag check could not be tested here. Scaling
policies take no tags.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from wpenv import aws, reasons
from wpenv.errors import TransientError
from wpenv.reconcilers.base import Context, Observation, Resource
from wpenv.settings import Settings

log = logging.getLogger(__name__)

NAMESPACE = "ecs"
DIMENSION = "ecs:service:DesiredCount"
METRIC = "ECSServiceAverageCPUUtilization"
POLICY_TYPE = "TargetTrackingScaling"
# Out fast when load comes, in slowly so a short lull does not drop tasks (Application
# Auto Scaling's default for ECS is 300 s both ways; 60 s out reacts within a minute or so).
SCALE_OUT_COOLDOWN = 60
SCALE_IN_COOLDOWN = 300
NOT_SUSPENDED = {
    "DynamicScalingInSuspended": False,
    "DynamicScalingOutSuspended": False,
    "ScheduledScalingSuspended": False,
}
GONE_CODES = frozenset({"ObjectNotFoundException"})
WAITING_FOR_SERVICE = "the scaler needs the service recorded first"
STALE = "scaler {have}; the plan wants {want}"
# The shared cache's listings: every ECS scalable target and scaling policy of the
# account, which the two describes page through when no resource id is named.
TARGETS, POLICIES = (f"application-autoscaling:{operation}" for operation in (
    "DescribeScalableTargets", "DescribeScalingPolicies"))


def policy_key_of(rid: str, name: str) -> str:
    """How the policies' listing keys a policy: its resource id and name."""
    return f"{rid} {name}"


def policy_key(policy: dict[str, Any]) -> str:
    """The listing key of a described policy."""
    return policy_key_of(str(policy.get("ResourceId")), str(policy.get("PolicyName")))


def namespace_targets(clients: Any) -> dict[str, dict[str, Any]]:
    """Resource id -> scalable target, for every ECS service's desired count."""
    pages = clients.application_autoscaling.get_paginator("describe_scalable_targets").paginate(
        ServiceNamespace=NAMESPACE, ScalableDimension=DIMENSION
    )
    return {str(t["ResourceId"]): dict(t) for page in pages for t in page["ScalableTargets"]}


def namespace_policies(clients: Any) -> dict[str, dict[str, Any]]:
    """`policy_key` -> scaling policy, for every ECS service's desired count."""
    pages = clients.application_autoscaling.get_paginator("describe_scaling_policies").paginate(
        ServiceNamespace=NAMESPACE, ScalableDimension=DIMENSION
    )
    return {policy_key(p): dict(p) for page in pages for p in page["ScalingPolicies"]}


def resource_id(ctx: Context) -> str:
    """Application Auto Scaling's name for the tenant's service."""
    return f"service/{ctx.settings.cluster_name}/{ctx.names.service}"


def policy_name(ctx: Context) -> str:
    """Deterministic, so a restarted operator finds (and upserts) the same policy."""
    return f"{ctx.names.base}-cpu"


def _key(ctx: Context) -> dict[str, str]:
    return {
        "ServiceNamespace": NAMESPACE,
        "ResourceId": resource_id(ctx),
        "ScalableDimension": DIMENSION,
    }


def desired_target(ctx: Context) -> dict[str, Any]:
    """`RegisterScalableTarget` arguments for the spec's bounds (no I/O, no tags).

    Only called while `wanted`, i.e. with `spec.autoscaling` set.
    """
    scaling = ctx.spec.autoscaling
    if scaling is None:
        raise ValueError("no autoscaling in the spec")
    return {
        **_key(ctx),
        "MinCapacity": scaling.min_replicas,
        "MaxCapacity": scaling.max_replicas,
        "SuspendedState": dict(NOT_SUSPENDED),
    }


def desired_policy(ctx: Context) -> dict[str, Any]:
    """`PutScalingPolicy` arguments: track the spec's average CPU (no I/O)."""
    scaling = ctx.spec.autoscaling
    if scaling is None:
        raise ValueError("no autoscaling in the spec")
    return {
        **_key(ctx),
        "PolicyName": policy_name(ctx),
        "PolicyType": POLICY_TYPE,
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": float(scaling.target_cpu_utilization),
            "PredefinedMetricSpecification": {"PredefinedMetricType": METRIC},
            "ScaleOutCooldown": SCALE_OUT_COOLDOWN,
            "ScaleInCooldown": SCALE_IN_COOLDOWN,
            "DisableScaleIn": False,
        },
    }


def target_shape(target: dict[str, Any]) -> dict[str, Any]:
    """The compared part of a described (or desired) target; absent flags mean False."""
    suspended = target.get("SuspendedState") or {}
    return {
        "min": target.get("MinCapacity"),
        "max": target.get("MaxCapacity"),
        "suspended": sorted(k for k in NOT_SUSPENDED if suspended.get(k)),
    }


def policy_shape(policy: dict[str, Any] | None) -> dict[str, Any] | None:
    """The compared part of a described (or desired) policy; None when there is none."""
    if policy is None:
        return None
    config = policy.get("TargetTrackingScalingPolicyConfiguration") or {}
    metric = config.get("PredefinedMetricSpecification") or {}
    value = config.get("TargetValue")
    return {
        "type": policy.get("PolicyType"),
        "target": float(value) if value is not None else None,
        "metric": metric.get("PredefinedMetricType"),
        "scaleOut": config.get("ScaleOutCooldown"),
        "scaleIn": config.get("ScaleInCooldown"),
        "disableScaleIn": bool(config.get("DisableScaleIn", False)),
    }


def _describe(summary: dict[str, Any] | None) -> str:
    if summary is None:
        return "no policy"
    return ", ".join(f"{k} {v}" for k, v in summary.items())


@dataclass(frozen=True)
class Scaler:
    """The registered scalable target as described, and our policy on it (None: absent)."""

    target: dict[str, Any]
    policy: dict[str, Any] | None = None

    @property
    def key(self) -> dict[str, str]:
        """The target's identity, as every Application Auto Scaling call takes it."""
        return {
            "ServiceNamespace": str(self.target.get("ServiceNamespace", NAMESPACE)),
            "ResourceId": str(self.target["ResourceId"]),
            "ScalableDimension": str(self.target.get("ScalableDimension", DIMENSION)),
        }


class Autoscaling(
    Resource, group="Compute", ids=("scalableTarget",), gone=GONE_CODES, needs=("Service",)
):
    """Scalable target and CPU policy of one tenant's service (condition group "Compute")."""

    def wanted(self, ctx: Context) -> bool:
        """Only with `spec.autoscaling`, and never while suspended (see the module doc)."""
        return ctx.spec.autoscaling is not None and not ctx.spec.suspended

    def find(self, ctx: Context) -> Scaler | None:
        """The target and our policy, as described; None without a target.

        The policy is only looked for when the target exists: AWS refuses a policy without
        its target and deletes the policies with it, so an idle environment without
        autoscaling costs one read.
        """
        client = ctx.clients.application_autoscaling
        rid = resource_id(ctx)

        def direct_target() -> dict[str, Any] | None:
            targets = client.describe_scalable_targets(
                ServiceNamespace=NAMESPACE, ResourceIds=[rid], ScalableDimension=DIMENSION
            )["ScalableTargets"]
            return next((dict(t) for t in targets if t.get("ResourceId") == rid), None)

        def direct_policy() -> dict[str, Any] | None:
            policies = client.describe_scaling_policies(
                **_key(ctx), PolicyNames=[policy_name(ctx)]
            )["ScalingPolicies"]
            # Filter again: moto ignores PolicyNames and matches ResourceId by substring.
            return next((dict(p) for p in policies
                         if policy_key(p) == policy_key_of(rid, policy_name(ctx))), None)

        target = self.cached(ctx, TARGETS, NAMESPACE, rid, direct=direct_target,
                             bulk=lambda: namespace_targets(ctx.clients))
        if target is None:
            return None
        policy = self.cached(ctx, POLICIES, NAMESPACE, policy_key_of(rid, policy_name(ctx)),
                             direct=direct_policy, bulk=lambda: namespace_policies(ctx.clients))
        return Scaler(target, policy)

    def inspect(self, ctx: Context, found: Scaler) -> Observation:
        """Exists when the target is registered; up to date on bounds and the policy."""
        ids = {"scalableTarget": str(found.target.get("ScalableTargetARN") or resource_id(ctx))}
        if not self.wanted(ctx):  # about to be removed: nothing to compare against
            return Observation(exists=True, up_to_date=True, ids=ids, found=found)
        have_target, want_target = target_shape(found.target), target_shape(desired_target(ctx))
        have_policy, want_policy = policy_shape(found.policy), policy_shape(desired_policy(ctx))
        up_to_date = have_target == want_target and have_policy == want_policy
        detail = ""
        if not up_to_date:
            detail = STALE.format(
                have=f"{have_target}, {_describe(have_policy)}",
                want=f"{want_target}, {_describe(want_policy)}",
            )
        return Observation(exists=True, up_to_date=up_to_date, ids=ids, detail=detail,
                           found=found)

    def create(self, ctx: Context, observed: Observation) -> None:
        """Register the target (tagged) and put the policy; adopts what already exists."""
        if not ctx.ids.get("serviceArn"):
            # Registering for a service that does not exist is a ValidationException,
            # which would read as permanent; the service simply is not there yet.
            raise TransientError(reasons.WAITING_FOR_DEPENDENCIES, WAITING_FOR_SERVICE)
        self._apply(ctx, observed.found, tag=True)
        log.info("registered scaler for %s", ctx.names.service)

    def update(self, ctx: Context, observed: Observation) -> None:
        """Re-register the target and/or re-put the policy, whichever differs."""
        self._apply(ctx, observed.found, tag=False)
        log.info("updated scaler for %s", ctx.names.service)

    def _apply(self, ctx: Context, found: Scaler | None, *, tag: bool) -> None:
        """Both calls are upserts: write only what differs from what observe found."""
        client = ctx.clients.application_autoscaling
        target = found.target if found is not None else None
        policy = found.policy if found is not None else None
        want_target = desired_target(ctx)
        arn = target.get("ScalableTargetARN") if target is not None else None
        if target is None or target_shape(target) != target_shape(want_target):
            extra = {"Tags": dict(ctx.tags)} if tag and target is None else {}
            answer = client.register_scalable_target(**want_target, **extra)
            arn = answer.get("ScalableTargetARN") or arn
        ctx.remember({"scalableTarget": str(arn or resource_id(ctx))})
        want_policy = desired_policy(ctx)
        if policy_shape(policy) != policy_shape(want_policy):
            client.put_scaling_policy(**want_policy)

    def remove(self, clients: Any, settings: Settings, found: Scaler) -> None:
        """Delete the policy, then deregister the target; "already gone" is success."""
        client = clients.application_autoscaling
        if found.policy is not None:
            _tolerate_gone(client.delete_scaling_policy, **found.key,
                           PolicyName=str(found.policy["PolicyName"]))
        _tolerate_gone(client.deregister_scalable_target, **found.key)
        log.info("deregistered scaler %s", found.key["ResourceId"])


def _tolerate_gone(call: Callable[..., Any], **kwargs: Any) -> None:
    """Make one delete call; someone else removing it first is the same outcome."""
    try:
        call(**kwargs)
    except ClientError as exc:
        if aws.error_code(exc) not in GONE_CODES:
            raise
