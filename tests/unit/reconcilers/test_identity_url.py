"""The tenant's URL for Cognito: https at its placed load balancer, read once."""

from __future__ import annotations

from tests.unit.reconcilers.test_pool import Pool, _ctx, two
from wpenv.reconcilers import identity, pool

__all__ = ["two"]


def test_the_url_follows_the_placement(two: Pool) -> None:
    settings = two.settings()
    listener = pool.https_listener(two.clients, two.arns[1])
    placed = _ctx(settings, two.clients)
    placed.ids.update({"loadBalancerArn": two.arns[1], "listenerArn": listener})
    dns = pool.dns_name(two.clients, two.arns[1])
    assert "wpenv-internal-2" in dns
    assert identity.tenant_url(placed) == f"https://{dns}/acme/"
    two.clients.elbv2.calls.clear()
    assert identity.tenant_url(placed) == f"https://{dns}/acme/"
    assert two.clients.elbv2.calls == []


def test_an_unplaced_or_vanished_listener_gives_the_placeholder(two: Pool) -> None:
    settings = two.settings()
    assert identity.tenant_url(_ctx(settings, two.clients)) == "http://alb.local/acme/"
    gone = _ctx(settings, two.clients)
    listener = pool.https_listener(two.clients, two.arns[0])
    gone.ids["listenerArn"] = listener[:-4] + "0000"
    assert identity.tenant_url(gone) == "http://alb.local/acme/"
