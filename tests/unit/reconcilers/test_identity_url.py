"""The tenant's URL for Cognito: https on an HTTPS listener, its port and protocol read once."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from wpenv.engine import make_context
from wpenv.reconcilers import identity
from wpenv.settings import Settings


@dataclass
class FakeElbv2:
    """DescribeListeners of fixed listeners, counting the calls."""

    listeners: dict[str, dict[str, Any]]
    calls: list[str] = field(default_factory=list)

    def describe_listeners(self, ListenerArns: list[str]) -> dict[str, Any]:  # noqa: N803
        self.calls.extend(ListenerArns)
        return {"Listeners": [self.listeners[arn] for arn in ListenerArns]}


@dataclass
class FakeClients:
    elbv2: FakeElbv2


def _ctx(clients: FakeClients, pool: list[str], ids: dict[str, Any] | None = None) -> Any:
    settings = Settings(alb_dns_name="internal-wpenv.elb.example", listener_arns=pool)
    return make_context("ns", "acme", {"tenantId": "acme"}, settings=settings,
                        clients=clients, ids=ids or {})


def test_https_listeners_give_https_urls_read_once_per_listener() -> None:
    first, second = (f"arn:aws:elasticloadbalancing:x:1:listener/app/a/{uuid.uuid4().hex}"
                     for _ in range(2))
    elbv2 = FakeElbv2({first: {"Port": 443, "Protocol": "HTTPS"},
                       second: {"Port": 8443, "Protocol": "HTTPS"}})
    clients = FakeClients(elbv2)
    ctx = _ctx(clients, [first, second])
    assert identity.tenant_url(ctx) == "https://internal-wpenv.elb.example/acme/"
    assert identity.tenant_url(ctx) == "https://internal-wpenv.elb.example/acme/"
    placed = _ctx(clients, [first, second], {"listenerArn": second})
    assert identity.tenant_url(placed) == "https://internal-wpenv.elb.example:8443/acme/"
    assert elbv2.calls == [first, second]  # each listener asked once per process


def test_an_http_listener_still_gives_http() -> None:
    arn = f"arn:aws:elasticloadbalancing:x:1:listener/app/a/{uuid.uuid4().hex}"
    ctx = _ctx(FakeClients(FakeElbv2({arn: {"Port": 8080, "Protocol": "HTTP"}})), [arn])
    assert identity.tenant_url(ctx) == "http://internal-wpenv.elb.example:8080/acme/"
