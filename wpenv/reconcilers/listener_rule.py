"""The tenant's rule on the shared, sharded listener pool (HLD 1.3 and 8).

Every tenant gets one rule, `path-pattern [prefix, prefix/*]` (plus `host-header` when the
spec names a host) forwarding to its own target group. One listener holds at most
`settings.rules_per_listener` rules (the AWS quota is 100), so the platform provides a pool
of listeners and a new rule goes to the first one with room, at the smallest free priority.

Finding an existing rule does not depend on the status: the recorded ARN first, then the
rule in the pool that forwards to the tenant's target group (unique per tenant), then the
rule carrying the tenant's tags.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from wpenv import aws
from wpenv.plan import TAG_ENVIRONMENT, TAG_TENANT, path_prefix
from wpenv.reconcilers.base import (
    MISSING,
    Context,
    Observation,
    PermanentError,
    TransientError,
)
from wpenv.reconcilers.target_group import find_target_group

log = logging.getLogger(__name__)

RULE_NOT_FOUND = "RuleNotFound"
LISTENER_POOL_FULL = (
    "every listener in the pool holds {limit} rules (the per-listener quota); add a listener "
    "to the pool (WPENV_LISTENER_ARNS) or raise the quota and rules_per_listener"
)
NO_LISTENER_POOL = "no listener pool is configured: set WPENV_LISTENER_ARNS"
WAITING_FOR_TARGET_GROUP = "the tenant's target group is not recorded yet"
NO_SUCH_LISTENER = "listener {arn} was not found"
TAGS_PER_CALL = 20  # DescribeTags accepts at most 20 ARNs


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
        raise PermanentError("NoListenerPool", NO_LISTENER_POOL)
    for listener_arn, priorities in pool:
        if len(priorities) >= limit:
            continue
        used = set(priorities)
        priority = 1
        while priority in used:
            priority += 1
        return listener_arn, priority
    raise PermanentError("ListenerPoolFull", LISTENER_POOL_FULL.format(limit=limit))


def listener_port(clients: Any, listener_arn: str) -> int:
    """The port a listener answers on, for the tenant's URL."""
    listeners = clients.elbv2.describe_listeners(ListenerArns=[listener_arn])["Listeners"]
    if not listeners:
        raise LookupError(NO_SUCH_LISTENER.format(arn=listener_arn))
    return int(listeners[0]["Port"])


def listener_of(rule_arn: str) -> str:
    """The listener ARN a rule ARN belongs to (AWS derives one from the other)."""
    head, _, _rule_id = rule_arn.rpartition("/")
    return head.replace(":listener-rule/", ":listener/", 1)


@dataclass
class Found:
    """One existing rule and where it lives."""

    rule: dict[str, Any]
    listener_arn: str

    @property
    def ids(self) -> dict[str, Any]:
        """The ResourceIds keys this resource records."""
        return {
            "listenerArn": self.listener_arn,
            "listenerRuleArn": self.rule["RuleArn"],
            "rulePriority": int(self.rule["Priority"]),
        }


@dataclass
class PoolState:
    """The pool's non-default rules, read once per call, in pool order."""

    rules: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)

    def all_rules(self) -> Iterator[Found]:
        """Every non-default rule with its listener."""
        for listener_arn, rules in self.rules:
            for rule in rules:
                yield Found(rule, listener_arn)

    def slots(self) -> list[tuple[str, list[int]]]:
        """The input of `pick_slot`."""
        return [(arn, [int(r["Priority"]) for r in rules]) for arn, rules in self.rules]


def read_pool(ctx: Context) -> PoolState:
    """Every listener's non-default rules (paginated: a listener can hold 100)."""
    paginator = ctx.clients.elbv2.get_paginator("describe_rules")
    state = PoolState()
    for listener_arn in ctx.settings.listener_arns:
        rules = [
            dict(rule)
            for page in paginator.paginate(ListenerArn=listener_arn)
            for rule in page["Rules"]
            if not rule.get("IsDefault") and rule.get("Priority") != "default"
        ]
        state.rules.append((listener_arn, rules))
    return state


def _tenant_tagged(ctx: Context, pool: PoolState) -> Found | None:
    """The pool rule carrying this environment's tags (last resort after a lost status)."""
    candidates = {found.rule["RuleArn"]: found for found in pool.all_rules()}
    arns = list(candidates)
    wanted = {TAG_ENVIRONMENT: ctx.tags[TAG_ENVIRONMENT], TAG_TENANT: ctx.tags[TAG_TENANT]}
    for start in range(0, len(arns), TAGS_PER_CALL):
        batch = arns[start : start + TAGS_PER_CALL]
        described = ctx.clients.elbv2.describe_tags(ResourceArns=batch)["TagDescriptions"]
        for description in described:
            tags = {tag["Key"]: tag.get("Value", "") for tag in description.get("Tags", [])}
            if all(tags.get(key) == value for key, value in wanted.items()):
                return candidates[description["ResourceArn"]]
    return None


def _target_group_arn(ctx: Context, lookup: bool) -> str | None:
    """The tenant's target group ARN: as recorded, or (read-only) looked up by name."""
    arn = ctx.ids.get("targetGroupArn")
    if arn or not lookup:
        return str(arn) if arn else None
    found = find_target_group(ctx)
    return str(found["TargetGroupArn"]) if found else None


def find_rule(ctx: Context, target_group_arn: str | None) -> Found | None:
    """Our rule: by recorded ARN, else the pool rule forwarding to our target group, else tags."""
    rule_arn = ctx.ids.get("listenerRuleArn")
    if rule_arn:
        try:
            rules = ctx.clients.elbv2.describe_rules(RuleArns=[rule_arn])["Rules"]
        except ClientError as exc:
            if not aws.is_not_found(exc, RULE_NOT_FOUND):
                raise
        else:
            if rules:
                return Found(dict(rules[0]), listener_of(str(rule_arn)))
    pool = read_pool(ctx)
    if target_group_arn:
        for found in pool.all_rules():
            if target_group_arn in forward_targets(found.rule.get("Actions", [])):
                return found
    return _tenant_tagged(ctx, pool)


def _required_target_group(ctx: Context) -> str:
    arn = _target_group_arn(ctx, lookup=False)
    if not arn:
        raise TransientError("WaitingForTargetGroup", WAITING_FOR_TARGET_GROUP)
    return arn


class ListenerRule:
    """The tenant's rule on the shared listener pool (condition group "Routing")."""

    kind = "ListenerRule"
    group = "Routing"

    def wanted(self, ctx: Context) -> bool:
        """No rule while suspended (when the spec says so): the listener's default answers."""
        return not (ctx.spec.suspended and ctx.spec.routing.remove_rule_when_suspended)

    def observe(self, ctx: Context) -> Observation:
        """Find the rule; up to date when its conditions and forward target match."""
        target_group_arn = _target_group_arn(ctx, lookup=True)
        found = find_rule(ctx, target_group_arn)
        if found is None:
            return MISSING
        conditions_match = condition_sets(found.rule.get("Conditions", [])) == condition_sets(
            desired_conditions(ctx)
        )
        targets = forward_targets(found.rule.get("Actions", []))
        target_matches = target_group_arn is not None and targets == {target_group_arn}
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
            facts={
                "listenerArn": found.listener_arn,
                "priority": int(found.rule["Priority"]),
                "pathPrefix": path_prefix(ctx.spec),
            },
        )

    def create(self, ctx: Context) -> None:
        """Adopt our rule if it exists, else create it in the first listener with room."""
        target_group_arn = _required_target_group(ctx)
        found = find_rule(ctx, target_group_arn)
        if found is not None:
            ctx.remember(found.ids)
            return
        listener_arn, priority = pick_slot(read_pool(ctx).slots(), ctx.settings.rules_per_listener)
        # PriorityInUse (a concurrent provision took the slot) propagates: transient.
        created = ctx.clients.elbv2.create_rule(
            ListenerArn=listener_arn,
            Priority=priority,
            Conditions=desired_conditions(ctx),
            Actions=desired_actions(target_group_arn),
            Tags=ctx.tag_list,
        )["Rules"][0]
        ctx.remember(Found(dict(created), listener_arn).ids)
        log.info("created listener rule %s priority %d", created["RuleArn"], priority)

    def update(self, ctx: Context, observed: Observation) -> None:
        """Put the conditions and the forward target back to the spec's."""
        target_group_arn = _required_target_group(ctx)
        rule_arn = observed.ids.get("listenerRuleArn")
        if not rule_arn:
            found = find_rule(ctx, target_group_arn)
            if found is None:
                return
            rule_arn = found.rule["RuleArn"]
        ctx.clients.elbv2.modify_rule(
            RuleArn=rule_arn,
            Conditions=desired_conditions(ctx),
            Actions=desired_actions(target_group_arn),
        )
        ctx.remember(observed.ids)

    def delete(self, ctx: Context) -> None:
        """Delete the rule; already gone is success."""
        found = find_rule(ctx, _target_group_arn(ctx, lookup=True))
        if found is None:
            return
        try:
            ctx.clients.elbv2.delete_rule(RuleArn=found.rule["RuleArn"])
        except ClientError as exc:
            if not aws.is_not_found(exc, RULE_NOT_FOUND):
                raise
        log.info("deleted listener rule %s", found.rule["RuleArn"])
