"""ELBv2's quotas per Application Load Balancer and per rule, which moto does not keep.

"Quotas for your Application Load Balancers" (Elastic Load Balancing User Guide): per load
balancer 100 rules (default rules not counted, adjustable), 100 target groups (not
adjustable) and 1,000 targets (adjustable); per rule 5 condition values and 5 condition
wildcards. moto leaves TooManyRules as a TODO and counts none of the others. Here, in the
moto server's process, reading moto's ELBv2 backend:
- CreateRule over the rule quota: TooManyRules;
- CreateRule or ModifyRule that would make the load balancer forward to more unique target
  groups than its quota (a target group counts once a rule or a default action forwards to
  it, however many do): TooManyUniqueTargetGroupsPerLoadBalancer;
- CreateRule, ModifyRule or RegisterTargets that would put more targets behind one load
  balancer than its quota: TooManyTargets;
- a rule with more condition values or wildcards than allowed: ValidationError.
The simulator's own registrations of ECS tasks (simulator.py) stop at the target quota too.
The codes are those of botocore's ELBv2 model (CreateRule's, ModifyRule's and
RegisterTargets' errors); the messages those ELBv2 gives.

The quotas are AWS's defaults unless the environment says otherwise (WPENV_ELB_*, read on
each request), and a test can set smaller ones at run time through
``POST /wpenv/faults/elb-quotas`` (``DELETE /wpenv/faults`` resets): :func:`set_quotas`.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs
from wsgiref.types import StartResponse, WSGIEnvironment

from moto.elbv2.models import elbv2_backends

from tests.platform.faults import _call

if TYPE_CHECKING:  # the package imports this module while it defines Refusal
    from tests.platform.fidelity import Refusal

log = logging.getLogger("wpenv.fidelity.elb_quotas")

CONTROL_PATH = "/wpenv/faults/elb-quotas"
MAX_BODY = 64 * 1024
ENV = {
    "rules": "WPENV_ELB_RULES_PER_LB",
    "target_groups": "WPENV_ELB_TARGET_GROUPS_PER_LB",
    "targets": "WPENV_ELB_TARGETS_PER_LB",
    "condition_values": "WPENV_ELB_CONDITION_VALUES_PER_RULE",
    "condition_wildcards": "WPENV_ELB_CONDITION_WILDCARDS_PER_RULE",
}
TOO_MANY_RULES = "The maximum number of rules on load balancer '{arn}' has been reached"
TOO_MANY_GROUPS = (
    "You have reached the maximum number of unique target groups that you can associate "
    "with a load balancer of type 'application': [{quota}]"
)
TOO_MANY_TARGETS = (
    "The maximum number of targets per load balancer '{quota}' has been reached on load "
    "balancer '{arn}'"
)
TOO_MANY_VALUES = "A rule can only have '{quota}' condition values"
TOO_MANY_WILDCARDS = "A rule can only have '{quota}' wildcards"


@dataclass(frozen=True)
class Quotas:
    """The quotas in force; AWS's defaults."""

    rules: int = 100
    target_groups: int = 100
    targets: int = 1000
    condition_values: int = 5
    condition_wildcards: int = 5

    @classmethod
    def from_env(cls, environ: dict[str, str] | os._Environ[str]) -> Quotas:
        """The defaults, with what WPENV_ELB_* set."""
        given = {key: int(environ[name]) for key, name in ENV.items() if environ.get(name)}
        return cls(**given)


class Control:
    """Run-time overrides of the quotas, answered on CONTROL_PATH (a FaultKind)."""

    name = "elb-quotas"
    path = CONTROL_PATH

    def __init__(self) -> None:
        """No overrides: the environment's quotas (or AWS's) hold."""
        self.lock = threading.Lock()
        self.overrides: dict[str, int] = {}

    def quotas(self) -> Quotas:
        """The quotas in force now."""
        with self.lock:
            return replace(Quotas.from_env(os.environ), **self.overrides)

    def state(self) -> dict[str, Any]:
        """The quotas in force, for GET /wpenv/faults."""
        return asdict(self.quotas())

    def clear(self) -> None:
        """Back to the environment's quotas."""
        with self.lock:
            self.overrides = {}

    def handle(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """GET the quotas, POST {"rules": 2, ...} to change some, DELETE to reset."""
        method = str(environ.get("REQUEST_METHOD") or "GET").upper()
        status = "200 OK"
        if method == "POST":
            try:
                length = min(int(environ.get("CONTENT_LENGTH") or 0), MAX_BODY)
                doc = json.loads(environ["wsgi.input"].read(length) or b"{}")
                known = {f.name for f in fields(Quotas)}
                if not isinstance(doc, dict) or set(doc) - known:
                    raise ValueError(f"a JSON object with some of {sorted(known)}")
                with self.lock:
                    self.overrides.update({key: int(value) for key, value in doc.items()})
                log.info("ELB quotas now %s", self.quotas())
            except (ValueError, TypeError) as exc:
                status, body = "400 Bad Request", {"error": str(exc)}
        elif method == "DELETE":
            self.clear()
        elif method != "GET":
            status, body = "405 Method Not Allowed", {"error": "GET, POST, DELETE"}
        if status == "200 OK":
            body = self.state()
        raw = json.dumps(body).encode()
        start_response(status, [("Content-Type", "application/json"),
                                ("Content-Length", str(len(raw)))])
        return [raw]


CONTROL = Control()


# --- reading moto's backend -----------------------------------------------------------------


def _backend(arn: str) -> Any | None:
    """moto's ELBv2 backend of the account and region an ELBv2 ARN names."""
    parts = arn.split(":", 5)
    if len(parts) != 6:
        return None
    try:
        return elbv2_backends[parts[4]][parts[3]]
    except Exception:  # an account or region moto does not know
        return None


def _action_groups(actions: Iterable[Any]) -> set[str]:
    """Target groups forwarded to by moto's FakeActions or by request action dicts."""
    arns: set[str] = set()
    for action in actions:
        data = action if isinstance(action, dict) else getattr(action, "data", {})
        if data.get("Type") != "forward":
            continue
        if data.get("TargetGroupArn"):
            arns.add(str(data["TargetGroupArn"]))
        for group in (data.get("ForwardConfig") or {}).get("TargetGroups") or []:
            arns.add(str(group["TargetGroupArn"]))
    return arns


@dataclass
class Usage:
    """One load balancer's non-default rules and the target groups it forwards to."""

    rules: int
    groups: set[str]


def usage(backend: Any, load_balancer_arn: str, leaving_out: str = "") -> Usage:
    """What the load balancer holds now (without the rule `leaving_out`, being modified)."""
    balancer = backend.load_balancers.get(load_balancer_arn)
    rules, groups = 0, set()
    for listener in balancer.listeners.values() if balancer else ():
        groups |= _action_groups(listener.default_actions)
        for arn, rule in listener.rules.items():
            if arn == leaving_out:
                continue
            groups |= _action_groups(rule.actions)
            rules += 0 if getattr(rule, "is_default", False) else 1
    return Usage(rules, groups)


def targets_behind(backend: Any, groups: Iterable[str]) -> int:
    """Targets registered in these target groups."""
    return sum(len(backend.target_groups[arn].targets)
               for arn in groups if arn in backend.target_groups)


# --- the requests -----------------------------------------------------------------------------


def _form(body: bytes) -> dict[str, str]:
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {key: values[0] for key, values in parsed.items()}


def _members(params: dict[str, str], prefix: str) -> list[dict[str, Any]]:
    """`Prefix.member.N.…` query parameters as a list of nested dicts (botocore's shape)."""
    items: dict[int, dict[str, Any]] = {}
    for key, value in params.items():
        if not key.startswith(prefix + ".member."):
            continue
        index, _, rest = key[len(prefix) + 8:].partition(".")
        if index.isdigit():
            node = items.setdefault(int(index), {})
            *path, leaf = rest.split(".") if rest else [""]
            for part in path:
                node = node.setdefault(part, {})
            node[leaf] = value
    return [items[i] for i in sorted(items)]


def _action_dicts(params: dict[str, str]) -> list[dict[str, Any]]:
    """The request's Actions, with ForwardConfig's target groups as a list."""
    actions = _members(params, "Actions")
    for action in actions:
        forward = action.get("ForwardConfig") or {}
        members = (forward.get("TargetGroups") or {}).get("member") or {}
        if members:
            forward["TargetGroups"] = [members[k] for k in sorted(members, key=int)]
    return actions


def condition_refusal(params: dict[str, str], quotas: Quotas) -> Refusal | None:
    """Too many condition values or wildcards in one rule: ValidationError."""
    from tests.platform.fidelity import Refusal  # noqa: PLC0415 (see the import above)

    values = [value for key, value in params.items()
              if key.startswith("Conditions.member.") and ".Values.member." in key]
    if len(values) > quotas.condition_values:
        return Refusal(400, "ValidationError",
                       TOO_MANY_VALUES.format(quota=quotas.condition_values), query=True)
    wildcards = sum(value.count("*") + value.count("?") for value in values)
    if wildcards > quotas.condition_wildcards:
        return Refusal(400, "ValidationError",
                       TOO_MANY_WILDCARDS.format(quota=quotas.condition_wildcards), query=True)
    return None


def rule_refusal(
    backend: Any, load_balancer_arn: str, new_groups: set[str], quotas: Quotas,
    *, adds_rule: bool, leaving_out: str = "",
) -> Refusal | None:
    """A rule (new, or one replacing `leaving_out`'s actions) over a load balancer quota."""
    from tests.platform.fidelity import Refusal  # noqa: PLC0415 (see the import above)

    held = usage(backend, load_balancer_arn, leaving_out)
    if adds_rule and held.rules + 1 > quotas.rules:
        return Refusal(400, "TooManyRules", TOO_MANY_RULES.format(arn=load_balancer_arn),
                       query=True)
    groups = held.groups | new_groups
    if len(groups) > quotas.target_groups and new_groups - held.groups:
        return Refusal(400, "TooManyUniqueTargetGroupsPerLoadBalancer",
                       TOO_MANY_GROUPS.format(quota=quotas.target_groups), query=True)
    if new_groups - held.groups and targets_behind(backend, groups) > quotas.targets:
        return Refusal(400, "TooManyTargets",
                       TOO_MANY_TARGETS.format(quota=quotas.targets, arn=load_balancer_arn),
                       query=True)
    return None


def target_room(backend: Any, target_group_arn: str) -> int:
    """How many more targets the target group may take before a load balancer that
    forwards to it reaches its target quota (ECS's registrations meet the same quota)."""
    quota = CONTROL.quotas().targets
    rooms = [quota - targets_behind(backend, groups)
             for groups in (usage(backend, arn).groups for arn in backend.load_balancers)
             if target_group_arn in groups]
    return max(0, min(rooms, default=quota))


def registration_refusal(backend: Any, params: dict[str, str], quotas: Quotas) -> Refusal | None:
    """RegisterTargets that would put too many targets behind a load balancer."""
    from tests.platform.fidelity import Refusal  # noqa: PLC0415 (see the import above)

    group = backend.target_groups.get(params.get("TargetGroupArn", ""))
    if group is None:
        return None  # moto answers TargetGroupNotFound
    ids = {target.get("Id") for target in _members(params, "Targets")} - set(group.targets)
    for arn in backend.load_balancers:
        groups = usage(backend, arn).groups
        if group.arn in groups and targets_behind(backend, groups) + len(ids) > quotas.targets:
            return Refusal(400, "TooManyTargets",
                           TOO_MANY_TARGETS.format(quota=quotas.targets, arn=arn), query=True)
    return None


def refuse(request: Any) -> Refusal | None:
    """Refuse CreateRule, ModifyRule and RegisterTargets over ELBv2's quotas."""
    if request.target or request.action not in ("CreateRule", "ModifyRule", "RegisterTargets"):
        return None
    params, quotas = _form(request.body), CONTROL.quotas()
    if request.action == "RegisterTargets":
        backend = _backend(params.get("TargetGroupArn", ""))
        return None if backend is None else registration_refusal(backend, params, quotas)
    refusal = condition_refusal(params, quotas)
    if refusal is not None:
        return refusal
    new_groups = _action_groups(_action_dicts(params))
    if request.action == "CreateRule":
        listener_arn = params.get("ListenerArn", "")
        backend = _backend(listener_arn)
        lb_arn = listener_arn.rpartition("/")[0].replace(":listener/", ":loadbalancer/", 1)
        if backend is None:
            return None
        return rule_refusal(backend, lb_arn, new_groups, quotas, adds_rule=True)
    rule_arn = params.get("RuleArn", "")
    backend = _backend(rule_arn)
    if backend is None or not new_groups:
        return None
    listener = rule_arn.rpartition("/")[0].replace(":listener-rule/", ":listener/", 1)
    lb_arn = listener.rpartition("/")[0].replace(":listener/", ":loadbalancer/", 1)
    return rule_refusal(backend, lb_arn, new_groups, quotas, adds_rule=False,
                        leaving_out=rule_arn)


def set_quotas(endpoint: str, **quotas: int) -> dict[str, Any]:
    """Set smaller (or larger) quotas on the platform at `endpoint`; reset with clear_faults."""
    state: dict[str, Any] = _call(endpoint, "POST", CONTROL_PATH, dict(quotas))
    return state
