"""The tenant's rule on the shared, sharded listener pool (HLD 1.3 and 8).

Every tenant gets one rule, `path-pattern [prefix, prefix/*]` (plus `host-header` when the
spec names a host) forwarding to its own target group. One listener holds at most
`settings.rules_per_listener` rules (the AWS quota is 100), so the platform provides a pool
of listeners and a new rule goes to the first one with room, at the smallest free priority.

Finding an existing rule does not depend on the status: the recorded ARN first, then the
rule in the pool that forwards to the tenant's target group (unique per tenant), then the
rule carrying the tenant's tags. ALB happily holds two rules with the same conditions, so
create relies on that lookup (the observation it is given) rather than on an error.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from wpenv import aws, reasons
from wpenv.errors import PermanentError, TransientError
from wpenv.plan import TAG_ENVIRONMENT, TAG_MANAGED_BY, TAG_TENANT, path_prefix
from wpenv.reconcilers.base import Context, Found, Observation, Resource
from wpenv.reconcilers.target_group import TargetGroup, add_elb_tags, elb_tags
from wpenv.settings import Settings

log = logging.getLogger(__name__)

RULE_NOT_FOUND = "RuleNotFound"
# A rule whose listener is gone went with it. TargetGroupNotFound is deliberately absent:
# the rule's target group being gone says nothing about the rule.
LISTENER_NOT_FOUND = "ListenerNotFound"
GONE = frozenset({RULE_NOT_FOUND, LISTENER_NOT_FOUND})
LISTENER_POOL_FULL = (
    "every listener in the pool holds {limit} rules (the per-listener quota); add a listener "
    "to the pool (WPENV_LISTENER_ARNS) or raise the quota and rules_per_listener"
)
NO_LISTENER_POOL = "no listener pool is configured: set WPENV_LISTENER_ARNS"
WAITING_FOR_TARGET_GROUP = "the tenant's target group is not recorded yet"
NO_SUCH_LISTENER = "listener {arn} was not found"


def desired_conditions(ctx: Context) -> list[dict[str, Any]]:
    """The rule's conditions: the tenant's path prefix and everything below it, and the host."""
    prefix = path_prefix(ctx.spec)
    conditions: list[dict[str, Any]] = [
        {"Field": "path-pattern", "PathPatternConfig": {"Values": [prefix, f"{prefix}/*"]}}
    ]
    if ctx.spec.routing.host:
        conditions.append(
            {"Field": "host-header", "HostHeaderConfig": {"Values": [ctx.spec.routing.host]}}
        )
    return conditions


def desired_actions(target_group_arn: str) -> list[dict[str, Any]]:
    """The rule's single action: forward to the tenant's target group."""
    return [{"Type": "forward", "TargetGroupArn": target_group_arn}]


def condition_sets(conditions: Sequence[dict[str, Any]]) -> dict[str, frozenset[str]]:
    """Conditions as {field: set of values}; reads both `Values` and the `*Config` form.

    AWS echoes both forms, moto only the one that was sent; order never matters.
    """
    sets: dict[str, set[str]] = {}
    for condition in conditions:
        values = set(condition.get("Values") or [])
        for key, config in condition.items():
            if key.endswith("Config") and isinstance(config, dict):
                values.update(config.get("Values") or [])
        sets.setdefault(str(condition.get("Field", "")), set()).update(values)
    return {key: frozenset(values) for key, values in sets.items()}


def forward_targets(actions: Sequence[dict[str, Any]]) -> set[str]:
    """Target group ARNs the rule forwards to (plain or weighted `ForwardConfig`)."""
    arns: set[str] = set()
    for action in actions:
        if action.get("Type") != "forward":
            continue
        if action.get("TargetGroupArn"):
            arns.add(str(action["TargetGroupArn"]))
        for group in (action.get("ForwardConfig") or {}).get("TargetGroups") or []:
            arns.add(str(group["TargetGroupArn"]))
    return arns


def pick_slot(pool: Sequence[tuple[str, Collection[int]]], limit: int) -> tuple[str, int]:
    """Where a new rule goes: (listener ARN, priority).

    `pool` lists, in pool order, each listener with the priorities of its non-default
    rules (so their count). The first listener with fewer than `limit` rules wins, at its
    smallest free priority >= 1.
    """
    if not pool:
        raise PermanentError(reasons.NO_LISTENER_POOL, NO_LISTENER_POOL)
    for listener_arn, priorities in pool:
        if len(priorities) >= limit:
            continue
        used = set(priorities)
        priority = 1
        while priority in used:
            priority += 1
        return listener_arn, priority
    raise PermanentError(reasons.LISTENER_POOL_FULL, LISTENER_POOL_FULL.format(limit=limit))


@dataclass(frozen=True)
class Endpoint:
    """What of a listener the tenant's URL needs: its port and protocol (HTTP or HTTPS)."""

    port: int
    protocol: str


# Listener ARN -> endpoint. The pool's listeners belong to the shared infrastructure and do
# not move, so each is asked once per process (the URL is needed by several kinds a pass).
_ENDPOINTS: dict[str, Endpoint] = {}


def listener_endpoint(clients: Any, listener_arn: str) -> Endpoint:
    """The port and protocol a listener answers on, for the tenant's URL (read once)."""
    if listener_arn not in _ENDPOINTS:
        listeners = clients.elbv2.describe_listeners(ListenerArns=[listener_arn])["Listeners"]
        if not listeners:
            raise LookupError(NO_SUCH_LISTENER.format(arn=listener_arn))
        found = listeners[0]
        _ENDPOINTS[listener_arn] = Endpoint(int(found["Port"]), str(found.get("Protocol", "")))
    return _ENDPOINTS[listener_arn]


def listener_port(clients: Any, listener_arn: str) -> int:
    """The port a listener answers on."""
    return listener_endpoint(clients, listener_arn).port


def listener_of(rule_arn: str) -> str:
    """The listener ARN a rule ARN belongs to (AWS derives one from the other)."""
    head, _, _rule_id = rule_arn.rpartition("/")
    return head.replace(":listener-rule/", ":listener/", 1)


@dataclass
class PoolRule:
    """One existing rule and where it lives: what observe and the orphan scan find.

    `target_group_arn` is the tenant's target group as observe knew it (recorded, or found
    by name), to compare the rule's forward target with; None from the orphan scan.
    """

    rule: dict[str, Any]
    listener_arn: str
    target_group_arn: str | None = None

    @property
    def arn(self) -> str:
        """The rule's ARN."""
        return str(self.rule["RuleArn"])

    @property
    def ids(self) -> dict[str, Any]:
        """The ResourceIds keys this resource records."""
        return {
            "listenerArn": self.listener_arn,
            "listenerRuleArn": self.arn,
            "rulePriority": int(self.rule["Priority"]),
        }


@dataclass
class PoolState:
    """The pool's non-default rules, read once per call, in pool order."""

    rules: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)

    def all_rules(self) -> Iterator[PoolRule]:
        """Every non-default rule with its listener."""
        for listener_arn, rules in self.rules:
            for rule in rules:
                yield PoolRule(rule, listener_arn)

    def slots(self) -> list[tuple[str, list[int]]]:
        """The input of `pick_slot`."""
        return [(arn, [int(r["Priority"]) for r in rules]) for arn, rules in self.rules]


def read_pool(clients: Any, settings: Settings) -> PoolState:
    """Every listener's non-default rules (paginated: a listener can hold 100)."""
    paginator = clients.elbv2.get_paginator("describe_rules")
    state = PoolState()
    for listener_arn in settings.listener_arns:
        rules = [
            dict(rule)
            for page in paginator.paginate(ListenerArn=listener_arn)
            for rule in page["Rules"]
            if not rule.get("IsDefault") and rule.get("Priority") != "default"
        ]
        state.rules.append((listener_arn, rules))
    return state


def _tenant_tagged(ctx: Context, pool: PoolState) -> PoolRule | None:
    """The pool rule carrying this environment's tags (last resort after a lost status)."""
    candidates = {found.arn: found for found in pool.all_rules()}
    wanted = {TAG_ENVIRONMENT: ctx.tags[TAG_ENVIRONMENT], TAG_TENANT: ctx.tags[TAG_TENANT]}
    for arn, tags in elb_tags(ctx.clients, list(candidates)).items():
        if all(tags.get(key) == value for key, value in wanted.items()):
            return candidates[arn]
    return None


def target_group_arn(ctx: Context, lookup: bool) -> str | None:
    """The tenant's target group ARN: as recorded, or (read-only) looked up by name."""
    arn = ctx.ids.get("targetGroupArn")
    if arn or not lookup:
        return str(arn) if arn else None
    found = TargetGroup().find_by_name(ctx)
    return str(found["TargetGroupArn"]) if found else None


def find_rule(ctx: Context, target_group: str | None) -> PoolRule | None:
    """Our rule: by recorded ARN, else the pool rule forwarding to our target group, else tags."""
    rule_arn = ctx.ids.get("listenerRuleArn")
    if rule_arn:
        try:
            rules = ctx.clients.elbv2.describe_rules(RuleArns=[rule_arn])["Rules"]
        except ClientError as exc:
            if aws.error_code(exc) not in GONE:
                raise
        else:
            if rules:
                return PoolRule(dict(rules[0]), listener_of(str(rule_arn)), target_group)
    return in_pool(ctx, read_pool(ctx.clients, ctx.settings), target_group)


def in_pool(ctx: Context, pool: PoolState, target_group: str | None) -> PoolRule | None:
    """Our rule in a pool already read: the one forwarding to our target group, else tags."""
    found: PoolRule | None = None
    if target_group:
        found = next(
            (r for r in pool.all_rules()
             if target_group in forward_targets(r.rule.get("Actions", []))),
            None,
        )
    found = found or _tenant_tagged(ctx, pool)
    if found is not None:
        found.target_group_arn = target_group
    return found


def _required_target_group(ctx: Context) -> str:
    arn = target_group_arn(ctx, lookup=False)
    if not arn:
        raise TransientError(reasons.WAITING_FOR_TARGET_GROUP, WAITING_FOR_TARGET_GROUP)
    return arn


class ListenerRule(
    Resource,
    group="Routing",
    ids=("listenerRuleArn", "listenerArn", "rulePriority"),
    gone=GONE,
    needs=("TargetGroup",),
    retainable=True,
):
    """The tenant's rule on the shared listener pool (condition group "Routing")."""

    def wanted(self, ctx: Context) -> bool:
        """No rule while suspended (when the spec says so): the listener's default answers."""
        return not (ctx.spec.suspended and ctx.spec.routing.remove_rule_when_suspended)

    def find(self, ctx: Context) -> PoolRule | None:
        """By recorded ARN, then through the pool; knows the target group to compare with."""
        return find_rule(ctx, target_group_arn(ctx, lookup=True))

    def inspect(self, ctx: Context, found: PoolRule) -> Observation:
        """Up to date when its conditions and forward target match."""
        conditions_match = condition_sets(found.rule.get("Conditions", [])) == condition_sets(
            desired_conditions(ctx)
        )
        targets = forward_targets(found.rule.get("Actions", []))
        target_matches = found.target_group_arn is not None and targets == {
            found.target_group_arn
        }
        stale = [
            what
            for what, ok in (("conditions", conditions_match), ("forward target", target_matches))
            if not ok
        ]
        return Observation(
            exists=True,
            up_to_date=not stale,
            ids=found.ids,
            ready=True,
            detail=f"rule differs: {', '.join(stale)}" if stale else "",
            found=found,
        )

    def create(self, ctx: Context, observed: Observation) -> None:
        """Adopt our rule if it exists, else create it in the first listener with room.

        ALB accepts a second rule with the same conditions, so this checks first: the
        pool it reads to choose a slot is searched for our rule, which costs no more calls.
        """
        target_group = _required_target_group(ctx)
        if observed.found is not None:
            ctx.remember(observed.found.ids)
            return
        pool = read_pool(ctx.clients, ctx.settings)
        found = in_pool(ctx, pool, target_group)
        if found is not None:
            ctx.remember(found.ids)
            return
        listener_arn, priority = pick_slot(pool.slots(), ctx.settings.rules_per_listener)
        # PriorityInUse (a concurrent provision took the slot) propagates: transient.
        created = ctx.clients.elbv2.create_rule(
            ListenerArn=listener_arn,
            Priority=priority,
            Conditions=desired_conditions(ctx),
            Actions=desired_actions(target_group),
            Tags=ctx.tag_list,
        )["Rules"][0]
        ctx.remember(PoolRule(dict(created), listener_arn).ids)
        log.info("created listener rule %s priority %d", created["RuleArn"], priority)

    def update(self, ctx: Context, observed: Observation) -> None:
        """Put the conditions and the forward target back to the spec's."""
        target_group = _required_target_group(ctx)
        found: PoolRule = observed.found
        ctx.clients.elbv2.modify_rule(
            RuleArn=found.arn,
            Conditions=desired_conditions(ctx),
            Actions=desired_actions(target_group),
        )
        ctx.remember(found.ids)

    def remove(self, clients: Any, settings: Settings, found: PoolRule) -> None:
        """DeleteRule (only RuleNotFound or ListenerNotFound mean it is gone)."""
        clients.elbv2.delete_rule(RuleArn=found.arn)
        log.info("deleted listener rule %s", found.arn)

    def tag(self, ctx: Context, recorded: str, tags: Mapping[str, str]) -> None:
        """AddTags on the recorded rule."""
        add_elb_tags(ctx.clients, recorded, tags)

    def managed(self, clients: Any, settings: Settings) -> Iterator[Found]:
        """Every non-default rule of the pool's listeners with our managed-by tag."""
        for listener_arn, rules in read_pool(clients, settings).rules:
            by_arn = {str(rule["RuleArn"]): rule for rule in rules}
            for arn, tags in elb_tags(clients, list(by_arn)).items():
                if tags.get(TAG_MANAGED_BY) == settings.operator_name:
                    yield self._found(PoolRule(by_arn[arn], listener_arn), tags)

    @staticmethod
    def _found(rule: PoolRule, tags: Mapping[str, str]) -> Found:
        return Found(rule.arn, rule, dict(tags), {"listenerArn": rule.listener_arn})

    def refresh(self, clients: Any, settings: Settings, item: Found) -> Found | None:
        """The rule with its current tags; None when it is gone."""
        try:
            rules = clients.elbv2.describe_rules(RuleArns=[item.id])["Rules"]
            tags = elb_tags(clients, [item.id]).get(item.id, {}) if rules else {}
        except ClientError as exc:
            if self.is_gone(exc):
                return None
            raise
        if not rules:
            return None
        return self._found(PoolRule(dict(rules[0]), listener_of(item.id)), tags)
