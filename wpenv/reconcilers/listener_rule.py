"""The tenant's rule on the HTTPS listener of the load balancer it is placed on (HLD 1.3, 8).

Every tenant gets one rule, `path-pattern [prefix, prefix/*]` (plus `host-header` when the
spec names a host) forwarding to its own target group. Which load balancer of the pool it
goes to is the Placement's decision (wpenv.reconcilers.placement), made before anything
else and counted against ELBv2's per-load-balancer quotas; here the rule goes to that
load balancer's HTTPS listener at the first free priority from one its tenant id picks
(`preferred_priority`: tenants made at once do not race for one). Should the load balancer
have filled up meanwhile (another operator, a person), ELBv2 refuses the rule with one of
its quota codes: the placement is dropped and the environment waits to be placed again.

Finding an existing rule does not depend on the status: the recorded ARN first, then the
rule on the placed listener (or, unplaced, anywhere in the pool) that forwards to the
tenant's target group (unique per tenant), then the rule carrying the tenant's tags. ALB
happily holds two rules with the same conditions, so create relies on that lookup (the
observation it is given) rather than on an error.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from wpenv import aws, reasons
from wpenv.errors import TransientError
from wpenv.plan import TAG_ENVIRONMENT, TAG_MANAGED_BY, TAG_TENANT, path_prefix
from wpenv.reconcilers.base import Context, Found, Observation, Resource
from wpenv.reconcilers.pool import (
    RULES_LISTED,
    forward_targets,
    listener_rules,
    load_balancer_of,
    pool_listeners,
)
from wpenv.reconcilers.target_group import TargetGroup, add_elb_tags, elb_tags
from wpenv.settings import Settings

log = logging.getLogger(__name__)

RULE_NOT_FOUND = "RuleNotFound"
# A rule whose listener is gone went with it. TargetGroupNotFound is deliberately absent:
# the rule's target group being gone says nothing about the rule.
LISTENER_NOT_FOUND = "ListenerNotFound"
GONE = frozenset({RULE_NOT_FOUND, LISTENER_NOT_FOUND})
# CreateRule's answers when the load balancer is at a quota ("Quotas for your Application
# Load Balancers"; CreateRule's Errors): rules, unique target groups, targets.
QUOTA_CODES = frozenset({
    "TooManyRules", "TooManyUniqueTargetGroupsPerLoadBalancer", "TooManyTargets",
})
PLACEMENT_IDS = ("loadBalancerArn", "listenerArn")
LOAD_BALANCER_FULL = (
    "load balancer {name} filled up before the tenant's rule was made ({code}); the "
    "environment is placed again on the next pass"
)
WAITING_FOR_TARGET_GROUP = "the tenant's target group is not recorded yet"
WAITING_FOR_PLACEMENT = "the tenant is not placed on a load balancer yet"


# The shared cache's listing: one DescribeRules by ListenerArn covers a whole listener.
LISTED = RULES_LISTED
TAGS = "elasticloadbalancing:DescribeTags"
MAX_PRIORITY = 50_000  # CreateRule's Priority: 1 to 50,000


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


def preferred_priority(tenant: str) -> int:
    """Where the tenant's search for a free priority starts: spread by a hash of its id.

    Tenants provisioning at once all read the listener, and each taking the smallest
    free priority made them pick the same one: all but one got PriorityInUse and came
    back after a backoff (1.3 retries per tenant with 10 provisioning at once). Routes
    never overlap (`plan.routes_overlap`), so the order of the rules does not matter.
    """
    return zlib.crc32(tenant.encode()) % MAX_PRIORITY + 1


def free_priority(priorities: Collection[int], start: int = 1) -> int:
    """The first priority from `start` up (wrapping after MAX_PRIORITY) that no rule of the
    listener holds (priorities are per listener)."""
    used = set(priorities)
    for offset in range(MAX_PRIORITY):
        priority = (start - 1 + offset) % MAX_PRIORITY + 1
        if priority not in used:
            return priority
    raise TransientError(reasons.LOAD_BALANCER_FULL, "every rule priority is taken")


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
        return {"listenerRuleArn": self.arn, "rulePriority": int(self.rule["Priority"])}


@dataclass
class PoolState:
    """Non-default rules of some of the pool's listeners, read once per call, in order."""

    rules: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)

    def all_rules(self) -> Iterator[PoolRule]:
        """Every non-default rule with its listener."""
        for listener_arn, rules in self.rules:
            for rule in rules:
                yield PoolRule(rule, listener_arn)


def read_pool(
    clients: Any, settings: Settings, listeners: Sequence[str] | None = None
) -> PoolState:
    """The non-default rules of `listeners` (default: every load balancer's HTTPS listener).

    Paginated: a load balancer can hold 100 rules, more with a raised quota.
    """
    state = PoolState()
    for listener_arn in pool_listeners(clients, settings) if listeners is None else listeners:
        rules = [
            rule for rule in listener_rules(clients, listener_arn).values()
            if not rule.get("IsDefault") and rule.get("Priority") != "default"
        ]
        state.rules.append((listener_arn, rules))
    return state


def _tenant_tagged(ctx: Context, pool: PoolState) -> PoolRule | None:
    """The pool rule carrying this environment's tags (last resort after a lost status)."""
    candidates = {found.arn: found for found in pool.all_rules()}
    wanted = {TAG_ENVIRONMENT: ctx.tags[TAG_ENVIRONMENT], TAG_TENANT: ctx.tags[TAG_TENANT]}
    # A rule's tags are set when it is made: each provisioning look reads only the rules
    # made since the last one (the shared cache's `each`), not the listener's 100 again.
    tagged = ctx.observations.each(
        TAGS, list(candidates), lambda arns: elb_tags(ctx.clients, arns))
    for arn, tags in tagged.items():
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
    """Our rule: by recorded ARN, else the rule forwarding to our target group, else tags.

    Without a recorded rule, only the placed listener is read; the whole pool only when
    the placement is not recorded either.
    """
    rule_arn = ctx.ids.get("listenerRuleArn")
    if rule_arn:
        listener = listener_of(str(rule_arn))
        rule: dict[str, Any] | None = ctx.observations.lookup(
            ctx.owner(ListenerRule.kind), LISTED, listener, str(rule_arn),
            bulk=lambda: listener_rules(ctx.clients, listener),
            direct=lambda: _described_rule(ctx, str(rule_arn)),
        )
        if rule is not None:
            return PoolRule(rule, listener, target_group)
    placed = ctx.ids.get("listenerArn")
    listeners = [str(placed)] if placed else None
    state = read_pool(ctx.clients, ctx.settings, listeners)
    found = in_pool(ctx, state, target_group)
    if found is None and placed:  # create comes next: it chooses a priority from these
        ctx.handed[ListenerRule.kind] = (str(placed), state)
    return found


def _described_rule(ctx: Context, rule_arn: str) -> dict[str, Any] | None:
    """DescribeRules of one rule; None when it (or its listener) is gone."""
    try:
        rules = ctx.clients.elbv2.describe_rules(RuleArns=[rule_arn])["Rules"]
    except ClientError as exc:
        if aws.error_code(exc) not in GONE:
            raise
        return None
    return dict(rules[0]) if rules else None


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


def _placed_listener(ctx: Context) -> str:
    arn = ctx.ids.get("listenerArn")
    if not arn:
        raise TransientError(reasons.WAITING_FOR_DEPENDENCIES, WAITING_FOR_PLACEMENT)
    return str(arn)


def quota_refusal(ctx: Context, listener_arn: str, exc: ClientError) -> TransientError | None:
    """ELBv2 refused the rule for a quota of the placed load balancer: drop the placement
    (the next pass places the tenant again) and wait; None for any other refusal."""
    code = aws.error_code(exc)
    if code not in QUOTA_CODES:
        return None
    ctx.forget(PLACEMENT_IDS)  # the Placement's ids: nothing of it exists in AWS
    name = load_balancer_of(listener_arn).split("/")[-2]
    return TransientError(
        reasons.LOAD_BALANCER_FULL, LOAD_BALANCER_FULL.format(name=name, code=code)
    )


class ListenerRule(
    Resource,
    group="Routing",
    ids=("listenerRuleArn", "rulePriority"),
    gone=GONE,
    needs=("Placement", "TargetGroup"),
    retainable=True,
):
    """The tenant's rule on its load balancer's HTTPS listener (condition group "Routing")."""

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
        """Adopt our rule if it exists, else create it on the placed listener.

        ALB accepts a second rule with the same conditions, so this checks first: the
        listener's rules it reads to choose a priority are searched for our rule, which
        costs no more calls. Those are the rules observe read moments ago when it has
        (`ctx.handed`): a rule another tenant made since at the same priority makes
        CreateRule answer PriorityInUse, a transient error.
        """
        target_group = _required_target_group(ctx)
        if observed.found is not None:
            ctx.remember(observed.found.ids)
            return
        listener_arn = _placed_listener(ctx)
        handed = ctx.handed.pop(self.kind, None)  # what observe just read, if it did
        state = handed[1] if handed and handed[0] == listener_arn else read_pool(
            ctx.clients, ctx.settings, [listener_arn])
        found = in_pool(ctx, state, target_group)
        if found is not None:
            ctx.remember(found.ids)
            return
        priority = free_priority([int(r["Priority"]) for _arn, rules in state.rules
                                  for r in rules], preferred_priority(ctx.names.tenant))
        try:  # PriorityInUse (a concurrent provision took the slot) propagates: transient.
            created = ctx.clients.elbv2.create_rule(
                ListenerArn=listener_arn,
                Priority=priority,
                Conditions=desired_conditions(ctx),
                Actions=desired_actions(target_group),
                Tags=ctx.tag_list,
            )["Rules"][0]
        except ClientError as exc:
            waiting = quota_refusal(ctx, listener_arn, exc)
            if waiting is None:
                raise
            raise waiting from exc
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
        """Every non-default rule of the pool's HTTPS listeners with our managed-by tag."""
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
