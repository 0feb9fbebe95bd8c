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

Several operator processes (WPENV_COORDINATION=leases) place one at a time (a mutex
Lease), and between the placement and the tenant's rule, which is what AWS counts, the
place is reserved: a Lease per tenant naming its load balancer, renewed at each pass until
the rule is recorded, which every placement counts (`pool.place`). So two processes never
give two tenants the last free place. One process alone (local) does both in memory: its
threads take turns, and the environments provisioning at once see each other's places.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from botocore.exceptions import ClientError

from wpenv import aws, leases, plan
from wpenv.reconcilers import pool
from wpenv.reconcilers.base import Context, Observation, Resource
from wpenv.reconcilers.target_group import NOT_FOUND as TARGET_GROUP_NOT_FOUND

log = logging.getLogger(__name__)

# The mutex every process holds while it places, and the reservations' Lease purpose.
PLACING = "wpenv-placing"
RESERVATION = "placement"


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
        """A placement is always as wanted: it never moves.

        Until the tenant's rule is recorded its place stays reserved: each pass renews the
        reservation (a Lease, not AWS; in memory with one process).
        """
        if "listenerRuleArn" not in ctx.ids:
            _reserve(ctx, found.load_balancer_arn)
        return Observation(exists=True, ids=found.ids, found=found)

    def create(self, ctx: Context, observed: Observation) -> None:
        """Keep a placement already made; else place on the first load balancer with room.

        Not looked up by name again: this pass's observe just did (DescribeTargetGroups
        by name), and a target group is attached only by our rule, made after this.
        """
        found = observed.found or self.found_by_id(ctx)
        if found is None:
            found = _place(ctx)
        ctx.remember(found.ids)

    def update(self, ctx: Context, observed: Observation) -> None:
        """Nothing to bring in line: a placement is never stale."""

    def delete(self, ctx: Context, observed: Observation) -> None:
        """Nothing in AWS to delete: forgetting the recorded ids (and the reservation)."""
        leases.current().unreserve(reservation_name(ctx.names.tenant))
        ctx.forget(self.ids)


def reservation_name(tenant: str) -> str:
    """The Lease that reserves a tenant's place until its rule is made."""
    return f"wpenv-placement-{tenant}"


def _reserve(ctx: Context, load_balancer_arn: str) -> None:
    """Reserve (or renew) the tenant's place on `load_balancer_arn`."""
    held_for = json.dumps({
        "loadBalancerArn": load_balancer_arn,
        "targetGroup": ctx.names.target_group,
        "targets": plan.tenant_targets(ctx.spec),
    })
    leases.current().reserve(reservation_name(ctx.names.tenant), RESERVATION, held_for)


def reserved(lease: leases.Lease) -> pool.Reserved | None:
    """What a reservation Lease holds a place for; None when it does not say."""
    try:
        held = json.loads(lease.held_for)
        return pool.Reserved(str(held["loadBalancerArn"]), str(held["targetGroup"]),
                             int(held["targets"]))
    except (ValueError, KeyError, TypeError):
        return None


def _place(ctx: Context) -> Placed:
    """Place the tenant, counting every other tenant's reserved place; reserve its own.

    One process at a time (a mutex Lease, when coordinated): between the count and the
    reservation nobody else may place.
    """
    coordination = leases.current()
    with coordination.exclusive(PLACING) as guard:
        others = [
            found for lease in coordination.reservations(RESERVATION)
            if lease.name != reservation_name(ctx.names.tenant)
            and (found := reserved(lease)) is not None
        ]
        arn, listener = pool.place(
            ctx.clients, ctx.settings, plan.tenant_targets(ctx.spec), others, ctx.observations
        )
        leases.still_held(guard)  # a lost mutex: another process may have counted too
        _reserve(ctx, arn)
    log.info("placed %s on load balancer %s", ctx.names.tenant, arn)
    return Placed(arn, listener)
