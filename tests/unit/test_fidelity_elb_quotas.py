"""ELBv2's per-load-balancer and per-rule quotas in the fidelity layer, on moto in-process."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import botocore.session
import pytest
from botocore.serialize import create_serializer
from moto.elbv2.models import elbv2_backends

from tests.platform.fidelity import Request
from tests.platform.fidelity.elb_quotas import CONTROL, Quotas, refuse, target_room
from tests.unit.reconcilers.test_pool import Pool, two
from wpenv.reconcilers import pool

__all__ = ["two"]
MODEL = botocore.session.get_session().get_service_model("elbv2")
SERIALIZER = create_serializer("query")


def _request(operation: str, **params: Any) -> Request:
    """The request botocore would send (the query protocol's form body)."""
    serialized = SERIALIZER.serialize_to_request(params, MODEL.operation_model(operation))
    body = urlencode(serialized["body"]).encode()
    return Request("", operation, "localhost", "/", body, {})


def _forward(group: str) -> list[dict[str, Any]]:
    return [{"Type": "forward", "TargetGroupArn": group}]


def _path(*values: str) -> list[dict[str, Any]]:
    return [{"Field": "path-pattern", "PathPatternConfig": {"Values": list(values)}}]


@pytest.fixture
def small(two: Pool) -> Iterator[Pool]:
    """The pool with two rules, two target groups and three targets per load balancer."""
    CONTROL.overrides.update(rules=2, target_groups=2, targets=3)
    yield two
    CONTROL.clear()


def test_the_defaults_are_aws_s(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Quotas.from_env({}) == Quotas(100, 100, 1000, 5, 5)
    monkeypatch.setenv("WPENV_ELB_RULES_PER_LB", "7")
    assert CONTROL.quotas().rules == 7


def test_a_rule_over_the_load_balancer_s_rule_quota_is_too_many_rules(small: Pool) -> None:
    listener = pool.https_listener(small.clients, small.arns[0])
    group = small.target_group("g1")
    for priority in (1, 2):
        ask = _request("CreateRule", ListenerArn=listener, Priority=priority,
                       Conditions=_path(f"/{priority}"), Actions=_forward(group))
        assert refuse(ask) is None
        small.rule(0, priority, group)
    refusal = refuse(_request("CreateRule", ListenerArn=listener, Priority=3,
                              Conditions=_path("/3"), Actions=_forward(group)))
    assert refusal is not None and refusal.query
    assert (refusal.status, refusal.code) == (400, "TooManyRules")
    assert refusal.message == (
        f"The maximum number of rules on load balancer '{small.arns[0]}' has been reached"
    )
    other = pool.https_listener(small.clients, small.arns[1])  # the next one has room
    assert refuse(_request("CreateRule", ListenerArn=other, Priority=1,
                           Conditions=_path("/1"), Actions=_forward(group))) is None


def test_a_third_unique_target_group_is_refused_a_known_one_is_not(small: Pool) -> None:
    listener = pool.https_listener(small.clients, small.arns[0])
    first, second, third = (small.target_group(f"g{i}") for i in range(3))
    small.rule(0, 1, first)
    small.clients.elbv2.client.modify_listener(ListenerArn=listener,
                                                DefaultActions=_forward(second))
    CONTROL.overrides["rules"] = 10
    refusal = refuse(_request("CreateRule", ListenerArn=listener, Priority=2,
                              Conditions=_path("/2"), Actions=_forward(third)))
    assert refusal is not None and refusal.code == "TooManyUniqueTargetGroupsPerLoadBalancer"
    assert refusal.message.endswith("a load balancer of type 'application': [2]")
    assert refuse(_request("CreateRule", ListenerArn=listener, Priority=2,
                           Conditions=_path("/2"), Actions=_forward(second))) is None
    rule = small.clients.elbv2.client.describe_rules(ListenerArn=listener)["Rules"][0]
    swap = _request("ModifyRule", RuleArn=rule["RuleArn"], Actions=_forward(third))
    assert refuse(swap) is None, "the modified rule's own target group is freed"
    small.rule(0, 2, first)  # now another rule keeps the first one attached
    refusal = refuse(swap)
    assert refusal is not None and refusal.code == "TooManyUniqueTargetGroupsPerLoadBalancer"


def test_targets_over_the_quota_are_refused_at_registration_and_attachment(
    small: Pool,
) -> None:
    listener = pool.https_listener(small.clients, small.arns[0])
    attached, waiting = small.target_group("attached"), small.target_group("waiting")
    small.rule(0, 1, attached)
    elbv2 = small.clients.elbv2.client
    elbv2.register_targets(TargetGroupArn=attached, Targets=[{"Id": "10.9.1.1"},
                                                              {"Id": "10.9.1.2"}])
    elbv2.register_targets(TargetGroupArn=waiting, Targets=[{"Id": "10.9.1.3"},
                                                             {"Id": "10.9.1.4"}])
    two_more = _request("RegisterTargets", TargetGroupArn=attached,
                        Targets=[{"Id": "10.9.1.5"}, {"Id": "10.9.1.6"}])
    refusal = refuse(two_more)
    assert refusal is not None and refusal.code == "TooManyTargets"
    assert refusal.message == (
        f"The maximum number of targets per load balancer '3' has been reached on load "
        f"balancer '{small.arns[0]}'"
    )
    again = _request("RegisterTargets", TargetGroupArn=attached, Targets=[{"Id": "10.9.1.1"}])
    assert refuse(again) is None, "an already registered target adds nothing"
    assert refuse(_request("RegisterTargets", TargetGroupArn=waiting,
                           Targets=[{"Id": "10.9.1.9"}])) is None, "attached nowhere"
    attach = _request("CreateRule", ListenerArn=listener, Priority=2,
                      Conditions=_path("/2"), Actions=_forward(waiting))
    refusal = refuse(attach)
    assert refusal is not None and refusal.code == "TooManyTargets"


def test_the_simulator_s_registrations_stop_at_the_target_quota(small: Pool) -> None:
    group = small.target_group("tasks")
    backend = elbv2_backends["123456789012"]["us-east-1"]
    assert target_room(backend, group) == 3  # attached nowhere yet: the quota itself
    small.rule(0, 1, group)
    small.clients.elbv2.client.register_targets(TargetGroupArn=group,
                                                Targets=[{"Id": "10.9.1.1"}, {"Id": "10.9.1.2"}])
    assert target_room(backend, group) == 1
    small.clients.elbv2.client.register_targets(TargetGroupArn=group, Targets=[{"Id": "10.9.1.3"}])
    assert target_room(backend, group) == 0


def test_a_rule_has_at_most_five_condition_values_and_five_wildcards(two: Pool) -> None:
    listener = pool.https_listener(two.clients, two.arns[0])
    group = two.target_group("g")
    six = _request("CreateRule", ListenerArn=listener, Priority=1,
                   Conditions=_path("/a", "/b", "/c", "/d", "/e", "/f"), Actions=_forward(group))
    refusal = refuse(six)
    assert refusal is not None
    assert (refusal.code, refusal.message) == (
        "ValidationError", "A rule can only have '5' condition values"
    )
    wild = _request("ModifyRule", RuleArn=listener.replace(":listener/", ":listener-rule/") + "/1",
                    Conditions=_path("/*/*/*", "/??/*"))
    refusal = refuse(wild)
    assert refusal is not None and refusal.message == "A rule can only have '5' wildcards"
    tenant = [*_path("/acme", "/acme/*"),
              {"Field": "host-header", "HostHeaderConfig": {"Values": ["acme.example.com"]}}]
    assert refuse(_request("CreateRule", ListenerArn=listener, Priority=1,
                           Conditions=tenant, Actions=_forward(group))) is None


def test_the_control_endpoint_sets_and_resets_the_quotas() -> None:
    started: list[str] = []

    def start(status: str, _headers: list[tuple[str, str]]) -> Any:
        started.append(status)
        return lambda _data: None

    body = json.dumps({"rules": 3}).encode()
    environ = {"REQUEST_METHOD": "POST", "CONTENT_LENGTH": str(len(body)),
               "wsgi.input": io.BytesIO(body)}
    answer = json.loads(b"".join(CONTROL.handle(environ, start)))  # type: ignore[arg-type]
    assert started == ["200 OK"] and answer["rules"] == 3 and answer["targets"] == 1000
    bad = json.dumps({"nope": 1}).encode()
    environ = {"REQUEST_METHOD": "POST", "CONTENT_LENGTH": str(len(bad)),
               "wsgi.input": io.BytesIO(bad)}
    b"".join(CONTROL.handle(environ, start))  # type: ignore[arg-type]
    assert started[-1] == "400 Bad Request"
    CONTROL.clear()
    assert CONTROL.quotas().rules == 100


def test_other_requests_pass() -> None:
    assert refuse(Request("", "DescribeRules", "localhost", "/", b"Action=DescribeRules", {}))\
        is None
    assert refuse(Request("X.CreateRule", "CreateRule", "localhost", "/", b"{}", {})) is None
