"""The shared load balancer pool: each load balancer's HTTPS listener, endpoint and usage.

ELBv2's quotas are per load balancer, not per listener ("Quotas for your Application Load
Balancers": 100 rules, default rules not counted; 100 target groups; 1,000 targets), so the
settings name a pool of load balancers (WPENV_LOAD_BALANCER_ARNS) and a tenant is placed on
one with room for it (`place`). The pure part of that decision (what counts as room, which
one wins, what a full pool says) is in `wpenv.plan`; this module only reads.

The pool belongs to the shared infrastructure and does not move while the operator runs, so
each load balancer's listeners and DNS name are asked once per process. Usage is counted
only when placing: a tenant with a recorded placement never reads the pool again.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from wpenv import metrics, reasons
from wpenv.errors import TransientError
from wpenv.plan import (
    TENANT_TARGET_GROUP_PREFIX,
    Endpoint,
    LoadBalancerQuotas,
    LoadBalancerUsage,
    pool_full_message,
    shortfall,
    target_ceiling,
)
from wpenv.reconcilers.observations import Observations
from wpenv.settings import Settings

log = logging.getLogger(__name__)

RULES_PAGE = 400
# The shared cache's listing of one listener's rules (one DescribeRules by ListenerArn).
RULES_LISTED = "elasticloadbalancing:DescribeRules"
NO_POOL = "no load balancer pool is configured: set WPENV_LOAD_BALANCER_ARNS"
NO_HTTPS = (
    "load balancer {name} has no HTTPS listener to hold tenant rules; give it one (with a "
    "certificate and a TLS 1.2+ policy) or take it out of WPENV_LOAD_BALANCER_ARNS"
)
NO_SUCH_LISTENER = "listener {arn} was not found"

# Load balancer ARN -> its listeners; load balancer ARN -> its DNS name (read once each).
_LISTENERS: dict[str, list[dict[str, Any]]] = {}
_DNS_NAMES: dict[str, str] = {}
# Load balancer ARN -> when a placement last found it without room for a rule or a target
# group. Placing the 900th tenant would otherwise count the rules of the nine full load
# balancers before it (each a DescribeRules against the account-wide ELBv2 rate); for
# FULL_SECONDS those are tried only after the rest of the pool, and counted again then.
_FULL: dict[str, float] = {}
FULL_SECONDS = 300.0


def load_balancer_of(listener_arn: str) -> str:
    """The load balancer a listener belongs to (AWS derives one ARN from the other).

    arn:…:listener/app/<name>/<lb-id>/<listener-id> -> arn:…:loadbalancer/app/<name>/<lb-id>
    """
    head = listener_arn.rpartition("/")[0]
    return head.replace(":listener/", ":loadbalancer/", 1)


def forward_targets(actions: Sequence[dict[str, Any]]) -> set[str]:
    """Target group ARNs the actions forward to (plain or weighted `ForwardConfig`)."""
    arns: set[str] = set()
    for action in actions:
        if action.get("Type") != "forward":
            continue
        if action.get("TargetGroupArn"):
            arns.add(str(action["TargetGroupArn"]))
        for group in (action.get("ForwardConfig") or {}).get("TargetGroups") or []:
            arns.add(str(group["TargetGroupArn"]))
    return arns


def listeners(clients: Any, load_balancer_arn: str) -> list[dict[str, Any]]:
    """Every listener of a load balancer (read once per process)."""
    if load_balancer_arn not in _LISTENERS:
        paginator = clients.elbv2.get_paginator("describe_listeners")
        _LISTENERS[load_balancer_arn] = [
            dict(listener)
            for page in paginator.paginate(LoadBalancerArn=load_balancer_arn)
            for listener in page["Listeners"]
        ]
    return _LISTENERS[load_balancer_arn]


def https_listener(clients: Any, load_balancer_arn: str) -> str:
    """The HTTPS listener tenant rules go into (the lowest port if there are several)."""
    found = sorted(
        (int(listener["Port"]), str(listener["ListenerArn"]))
        for listener in listeners(clients, load_balancer_arn)
        if str(listener.get("Protocol", "")).upper() == "HTTPS"
    )
    if not found:
        name = LoadBalancerUsage(load_balancer_arn, 0, 0).name
        raise TransientError(reasons.NO_HTTPS_LISTENER, NO_HTTPS.format(name=name))
    return found[0][1]


def pool_listeners(clients: Any, settings: Settings) -> list[str]:
    """The HTTPS listener of every load balancer in the pool, in pool order."""
    return [https_listener(clients, arn) for arn in settings.load_balancer_arns]


def dns_name(clients: Any, load_balancer_arn: str) -> str:
    """A load balancer's DNS name (read once per process)."""
    if load_balancer_arn not in _DNS_NAMES:
        found = clients.elbv2.describe_load_balancers(LoadBalancerArns=[load_balancer_arn])
        _DNS_NAMES[load_balancer_arn] = str(found["LoadBalancers"][0]["DNSName"])
    return _DNS_NAMES[load_balancer_arn]


def endpoint(clients: Any, listener_arn: str) -> Endpoint:
    """Where a listener answers (its load balancer's DNS name, its port and protocol).

    LookupError when the load balancer no longer has that listener; ELBv2's
    LoadBalancerNotFound when the load balancer itself is gone.
    """
    load_balancer_arn = load_balancer_of(listener_arn)
    found = next(
        (item for item in listeners(clients, load_balancer_arn)
         if item["ListenerArn"] == listener_arn),
        None,
    )
    if found is None:
        raise LookupError(NO_SUCH_LISTENER.format(arn=listener_arn))
    return Endpoint(dns_name(clients, load_balancer_arn), int(found["Port"]),
                    str(found.get("Protocol", "")))


def usage(
    clients: Any, load_balancer_arn: str, observations: Observations | None = None
) -> tuple[LoadBalancerUsage, set[str]]:
    """Rules and target groups of one load balancer, across all its listeners.

    A target group counts once a rule (or a listener's default action) forwards to it,
    however many do; the default rules do not count as rules. Returns the target groups
    too, for `count_targets`.

    The HTTPS listener, where tenants' rules go, is read now. The others (the HTTP
    redirect) hold only rules a person made, so with `observations` their listing is the
    shared cache's, at most a TTL old: a person's rule made since shows later, and should
    the count then be one short, CreateRule's TooManyRules makes the tenant wait.
    """
    rules, groups = 0, set()
    tenants = https_listener(clients, load_balancer_arn)
    for listener in listeners(clients, load_balancer_arn):
        arn = str(listener["ListenerArn"])
        groups |= forward_targets(listener.get("DefaultActions") or [])
        if observations is None or arn == tenants:
            listed: Mapping[str, Any] = listener_rules(clients, arn)
        else:
            listed = observations.snapshot(
                RULES_LISTED, arn, functools.partial(listener_rules, clients, arn)).items
        for rule in listed.values():
            groups |= forward_targets(rule.get("Actions") or [])
            if not rule.get("IsDefault") and rule.get("Priority") != "default":
                rules += 1
    return LoadBalancerUsage(load_balancer_arn, rules, len(groups)), groups


def listener_rules(clients: Any, listener_arn: str) -> dict[str, dict[str, Any]]:
    """Rule ARN -> rule, for every rule of one listener, default rule included, in pages of
    400 (DescribeRules' largest; the unstated default, moto's 50, took two or three calls
    for a listener of 100 rules)."""
    pages = clients.elbv2.get_paginator("describe_rules").paginate(
        ListenerArn=listener_arn, PaginationConfig={"PageSize": RULES_PAGE}
    )
    return {str(r["RuleArn"]): dict(r) for page in pages for r in page["Rules"]}


def count_targets(clients: Any, target_groups: set[str]) -> int:
    """Targets registered in these target groups (one DescribeTargetHealth each)."""
    return sum(
        len(clients.elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"])
        for arn in sorted(target_groups)
    )


def with_tenant(found: LoadBalancerUsage, targets: int) -> LoadBalancerUsage:
    """The usage once one more tenant (a rule, its target group, `targets`) is placed."""
    return replace(found, rules=found.rules + 1, target_groups=found.target_groups + 1,
                   targets=None if found.targets is None else found.targets + targets)


def report_capacity(found: LoadBalancerUsage, quotas: LoadBalancerQuotas, exact: bool) -> None:
    """Each quota's use on one load balancer, as last counted (the pool alerts at 80 %);
    targets only when counted exactly, not when a ceiling showed they fit."""
    metrics.set_lb_pool_capacity(found.name, "rules", found.rules, quotas.rules)
    metrics.set_lb_pool_capacity(found.name, "target_groups", found.target_groups,
                                 quotas.target_groups)
    if exact and found.targets is not None:
        metrics.set_lb_pool_capacity(found.name, "targets", found.targets, quotas.targets)


def targets_held(
    clients: Any, groups: set[str], reserved: Sequence[Reserved], room: int
) -> tuple[int, bool]:
    """Targets behind a load balancer's target groups, and whether that is an exact count.

    Counting is a DescribeTargetHealth per target group, and a placement would make one
    for every tenant already on the load balancer: a cost that grows with the square of
    the tenant count. So our groups are first bounded by their tenants' declared maxima
    (`plan.target_ceiling`), and only groups of others are counted; when that ceiling fits
    in `room`, it is the answer. Only a load balancer near its target quota is counted
    target group by target group.
    """
    ours = {arn for arn in groups
            if target_group_name(arn).startswith(TENANT_TARGET_GROUP_PREFIX)}
    declared = {r.target_group: r.targets for r in reserved}
    ceiling = target_ceiling([target_group_name(arn) for arn in ours], declared)
    if ceiling > room:
        return count_targets(clients, groups), True
    others = count_targets(clients, groups - ours)
    if ceiling + others <= room:
        return ceiling + others, False
    return others + count_targets(clients, ours), True  # each group read once


@dataclass(frozen=True)
class Reserved:
    """A place another tenant was given on a load balancer, and what it will take there:
    one rule, its target group (by name) and `targets` targets, not all made yet."""

    load_balancer_arn: str
    target_group: str
    targets: int


def target_group_name(arn: str) -> str:
    """A target group's name, from its ARN (…:targetgroup/<name>/<id>)."""
    parts = arn.rpartition(":")[2].split("/")
    return parts[1] if len(parts) >= 3 else arn


def with_reserved(
    found: LoadBalancerUsage, groups: set[str], reserved: Sequence[Reserved]
) -> tuple[LoadBalancerUsage, int]:
    """The usage with the places reserved on it added: (usage, their targets).

    A reservation whose target group the load balancer already forwards to is counted in
    AWS already (its rule was made) and adds nothing.
    """
    made = {target_group_name(arn) for arn in groups}
    extra = [r for r in reserved
             if r.load_balancer_arn == found.arn and r.target_group not in made]
    more = replace(found, rules=found.rules + len(extra),
                   target_groups=found.target_groups + len(extra))
    return more, sum(r.targets for r in extra)


def fill_order(arns: Sequence[str], now: float) -> list[str]:
    """The pool in its order, but those found full in the last FULL_SECONDS at the end."""
    recent = {arn for arn in arns if now - _FULL.get(arn, float("-inf")) < FULL_SECONDS}
    return [a for a in arns if a not in recent] + [a for a in arns if a in recent]


def place(
    clients: Any, settings: Settings, targets: int, reserved: Sequence[Reserved] = (),
    observations: Observations | None = None,
) -> tuple[str, str]:
    """(load balancer, HTTPS listener) for a new tenant needing `targets` targets.

    The first load balancer in pool order (those found full lately last: `fill_order`)
    with room for one more rule, target group and
    `targets` targets, counting what AWS holds plus the places `reserved` for tenants
    whose rule is not made yet (other operator processes' too, `wpenv.leases`); targets
    are judged (`targets_held`) only on a load balancer whose rules and target groups have
    room. A full pool, or none, is a TransientError: the environment waits and
    tries again, nothing is rolled back.
    """
    if not settings.load_balancer_arns:
        raise TransientError(reasons.NO_LOAD_BALANCER_POOL, NO_POOL)
    quotas = LoadBalancerQuotas.of(settings)
    counted: list[LoadBalancerUsage] = []
    for load_balancer_arn in fill_order(settings.load_balancer_arns, time.monotonic()):
        found, groups = usage(clients, load_balancer_arn, observations)
        found, reserved_targets = with_reserved(found, groups, reserved)
        exact = False
        if shortfall(found, quotas, targets):  # targets not counted yet: no rule or group fits
            _FULL[load_balancer_arn] = time.monotonic()
        else:
            held, exact = targets_held(clients, groups, reserved,
                                       quotas.targets - targets - reserved_targets)
            found = replace(found, targets=held + reserved_targets)
        counted.append(found)
        if not shortfall(found, quotas, targets):
            _FULL.pop(load_balancer_arn, None)
            listener_arn = https_listener(clients, load_balancer_arn)
            log.info("placing on load balancer %s (%s)", found.name, found)
            report_capacity(with_tenant(found, targets), quotas, exact)
            return load_balancer_arn, listener_arn
        report_capacity(found, quotas, exact)
    counted.sort(key=lambda found: settings.load_balancer_arns.index(found.arn))  # pool order
    raise TransientError(
        reasons.LOAD_BALANCER_POOL_FULL, pool_full_message(counted, quotas, targets)
    )
