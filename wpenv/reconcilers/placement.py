"""Which load balancer of the pool a tenant lives on: decided once, recorded, kept.

First in the creation order, before anything that needs the tenant's URL (the Cognito
callback URLs, the task definition's sign-out URL): the URL is the placed load balancer's
DNS name and HTTPS listener, so it is right from the first pass. A full pool makes the
environment wait here, before it holds anything (not even a user pool).

The placement is a decision, not an AWS object: it lives in status.resources
(`loadBalancerArn`, `listenerArn`) and costs no AWS call once recorded, so drift checks of
placed tenants never read the pool. The tenant stays where it is for good: a suspended
tenant whose rule was removed comes back to the same load balancer. A lost status is found
again through the tenant's target group, which lists the load balancer a rule attached it
to; before that rule exists there is nothing to find, and a fresh placement is as good.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from botocore.exceptions import ClientError

from wpenv import aws, plan
from wpenv.reconcilers import pool
from wpenv.reconcilers.base import Context, Observation, Resource
from wpenv.reconcilers.target_group import NOT_FOUND as TARGET_GROUP_NOT_FOUND

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Placed:
    """A tenant's place: its load balancer and that load balancer's HTTPS listener."""

    load_balancer_arn: str
    listener_arn: str

    @property
    def ids(self) -> dict[str, str]:
        """The status.resources keys it is recorded under."""
        return {"loadBalancerArn": self.load_balancer_arn, "listenerArn": self.listener_arn}


class Placement(Resource, group="Routing", ids=("loadBalancerArn", "listenerArn"), in_aws=False):
    """The tenant's load balancer in the pool (condition group "Routing")."""

    def find_by_id(self, ctx: Context, recorded: str) -> Placed | None:
        """The recorded placement, as it is: no AWS call (the pool does not move)."""
        listener = ctx.ids.get("listenerArn")
        return Placed(recorded, str(listener)) if listener else None

    def find_by_name(self, ctx: Context) -> Placed | None:
        """A lost status: the load balancer the tenant's target group is attached to."""
        try:
            groups = ctx.clients.elbv2.describe_target_groups(Names=[ctx.names.target_group])
        except ClientError as exc:
            if aws.error_code(exc) == TARGET_GROUP_NOT_FOUND:
                return None
            raise
        for group in groups["TargetGroups"]:
            for arn in group.get("LoadBalancerArns") or []:
                return Placed(str(arn), pool.https_listener(ctx.clients, str(arn)))
        return None

    def inspect(self, ctx: Context, found: Placed) -> Observation:
        """A placement is always as wanted: it never moves."""
        return Observation(exists=True, ids=found.ids, found=found)

    def create(self, ctx: Context, observed: Observation) -> None:
        """Keep a placement already made; else place on the first load balancer with room."""
        found = observed.found or self.found_by_id(ctx) or self.find_by_name(ctx)
        if found is None:
            arn, listener = pool.place(
                ctx.clients, ctx.settings, plan.tenant_targets(ctx.spec)
            )
            found = Placed(arn, listener)
            log.info("placed %s on load balancer %s", ctx.names.tenant, arn)
        ctx.remember(found.ids)

    def update(self, ctx: Context, observed: Observation) -> None:
        """Nothing to bring in line: a placement is never stale."""

    def delete(self, ctx: Context, observed: Observation) -> None:
        """Nothing in AWS to delete: forgetting the recorded ids is all."""
        ctx.forget(self.ids)
