"""Placement on the load balancer pool, against the platform with small ELBv2 quotas.

Each test builds a pool of its own (two fresh ALBs with an HTTPS listener each, as the
platform's bootstrap makes them), so rules other tests leave on the shared pool do not
count, and sets the platform's per-load-balancer quotas small for its duration.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from prometheus_client import REGISTRY

from tests.integration.conftest import MakeCtx
from tests.integration.test_leases import coordination_api
from tests.platform.aws import clients_for, ensure_load_balancer_pool
from tests.platform.faults import clear_faults
from tests.platform.fidelity.elb_quotas import set_quotas
from wpenv import engine, leases
from wpenv.errors import TransientError
from wpenv.reconcilers.base import Context
from wpenv.reconcilers.listener_rule import ListenerRule
from wpenv.reconcilers.placement import RESERVATION, Placement, reservation_name
from wpenv.reconcilers.pool import endpoint, https_listener
from wpenv.reconcilers.target_group import TargetGroup
from wpenv.settings import Settings

pytestmark = pytest.mark.e2e

RULES = 2  # per load balancer, on the platform and in the operator's settings alike


@dataclass
class OwnPool:
    """Two fresh ALBs and the operator settings that name them, with the small quota."""

    settings: Settings
    arns: list[str]
    made: list[Context] = field(default_factory=list)


@pytest.fixture
def own_pool(settings: Settings) -> Iterator[OwnPool]:
    endpoint_url = os.environ["AWS_ENDPOINT_URL"]
    client = clients_for(endpoint_url)
    tag = uuid.uuid4().hex[:8]
    arns = ensure_load_balancer_pool(
        client, settings.private_subnet_ids, settings.alb_security_group_id,
        names=(f"it-{tag}-1", f"it-{tag}-2"),
    )
    set_quotas(endpoint_url, rules=RULES)
    pool = OwnPool(settings.model_copy(update={"load_balancer_arns": arns,
                                               "rules_per_load_balancer": RULES}), arns)
    yield pool
    clear_faults(endpoint_url)
    for ctx in pool.made:
        ListenerRule().ensure_absent(ctx)
        TargetGroup().ensure_absent(ctx)
    elbv2 = client("elbv2")
    for arn in arns:
        for listener in elbv2.describe_listeners(LoadBalancerArn=arn)["Listeners"]:
            elbv2.delete_listener(ListenerArn=listener["ListenerArn"])
        elbv2.delete_load_balancer(LoadBalancerArn=arn)


Tenant = Callable[..., Context]


@pytest.fixture
def tenant(own_pool: OwnPool, make_ctx: MakeCtx) -> Tenant:
    """A new tenant on the test's own pool (its rule and target group removed after)."""

    def build(**spec: Any) -> Context:
        ctx = make_ctx(**spec)
        ctx.settings = own_pool.settings
        own_pool.made.append(ctx)
        return ctx

    return build


def _route(ctx: Context) -> None:
    """Place the tenant, then make its target group and rule, as the engine's order does."""
    for kind in (Placement(), TargetGroup(), ListenerRule()):
        observed = kind.observe(ctx)
        if not observed.exists:
            kind.create(ctx, observed)


def test_the_first_load_balancer_fills_then_the_next_takes_tenants(
    own_pool: OwnPool, tenant: Tenant
) -> None:
    first, second = own_pool.arns
    placed = []
    for _ in range(RULES + 1):
        ctx = tenant()
        _route(ctx)
        placed.append(ctx)
    assert [ctx.ids["loadBalancerArn"] for ctx in placed] == [first] * RULES + [second]
    last = placed[-1]
    assert last.ids["listenerArn"] == https_listener(last.clients, second)
    url = endpoint(last.clients, last.ids["listenerArn"])
    assert (url.protocol, url.port) == ("HTTPS", 443)
    assert url.dns_name != endpoint(last.clients, placed[0].ids["listenerArn"]).dns_name

    # A placed tenant stays: its recorded placement is kept, pass after pass.
    again = Placement().observe(placed[0])
    assert again.ids["loadBalancerArn"] == first and again.up_to_date

    # What the pool counted shows as its capacity gauge: the first full, the second half.
    def used(arn: str, quota: str) -> float | None:
        name = arn.split("/")[-2]
        return REGISTRY.get_sample_value("wpenv_lb_pool_capacity_used_ratio",
                                         {"load_balancer": name, "quota": quota})

    assert used(first, "rules") == 1.0 and used(second, "rules") == 1 / RULES


def test_threads_of_one_process_never_give_two_tenants_the_last_place(
    own_pool: OwnPool, tenant: Tenant
) -> None:
    """kopf runs sync handlers in a thread pool: placements of one process take turns."""
    first, second = own_pool.arns
    contexts = [tenant() for _ in range(RULES + 1)]
    errors: list[BaseException] = []

    def place(ctx: Context) -> None:
        try:
            observed = Placement().observe(ctx)
            Placement().create(ctx, observed)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=place, args=(ctx,)) for ctx in contexts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    placed = Counter(ctx.ids["loadBalancerArn"] for ctx in contexts)
    assert placed == {first: RULES, second: 1}


def test_a_load_balancer_that_filled_meanwhile_is_refused_and_the_tenant_placed_again(
    own_pool: OwnPool, tenant: Tenant
) -> None:
    first, second = own_pool.arns
    late = tenant()
    Placement().create(late, Placement().observe(late))  # placed while the first had room
    TargetGroup().create(late, TargetGroup().observe(late))
    assert late.ids["loadBalancerArn"] == first
    # Its place was forgotten (one process keeps reservations in memory; a restart drops
    # them): others take the first one's room.
    leases.current().unreserve(reservation_name(late.names.tenant))
    for _ in range(RULES):
        _route(tenant())
    with pytest.raises(TransientError) as raised:
        ListenerRule().create(late, ListenerRule().observe(late))
    assert raised.value.reason == "LoadBalancerFull"
    assert "TooManyRules" in str(raised.value)  # the platform refused, as ELBv2 does
    assert "loadBalancerArn" not in late.ids
    _route(late)  # the next pass places it again
    assert late.ids["loadBalancerArn"] == second


def test_a_full_pool_waits_with_what_to_add_and_rolls_nothing_back(
    own_pool: OwnPool, tenant: Tenant
) -> None:
    for _ in range(2 * RULES):
        _route(tenant())
    waiting = tenant()
    outcome = engine.converge(waiting, engine.default_resources())
    assert outcome.failure is None and outcome.troubled
    assert outcome.retry_after is not None
    ready = next(c for c in outcome.conditions if c.type == "Ready")
    assert ready.reason == "LoadBalancerPoolFull"
    assert "every load balancer in the pool is full" in ready.message
    assert f"rules {RULES}/{RULES}" in ready.message
    assert "add a load balancer" in ready.message and "WPENV_LOAD_BALANCER_ARNS" in ready.message
    assert not [e for e in outcome.events if e.reason in ("RolledBack", "Created")]
    assert waiting.ids == {}, "nothing was built while it waits"


@pytest.fixture
def two_processes(
    platform: dict[str, str], namespace: str
) -> Iterator[tuple[leases.Coordinated, leases.Coordinated]]:
    """Two operator processes' coordination on the local API server; Local again after."""
    api = coordination_api(platform)
    pair = tuple(
        leases.Coordinated(leases.Leases(namespace, 15, identity=who, api=api), 5.0, 900)
        for who in ("a", "b")
    )
    yield pair[0], pair[1]
    leases.install(leases.Local())


def test_places_reserved_by_other_processes_count_until_the_rule_is_made(
    own_pool: OwnPool, tenant: Tenant,
    two_processes: tuple[leases.Coordinated, leases.Coordinated],
) -> None:
    """No rule is made yet, so AWS shows room everywhere; the reservations say otherwise.

    Uncoordinated, all three would go to the first load balancer and the last rule made
    would be refused (TooManyRules); here the third goes to the second.
    """
    first, second = own_pool.arns
    a, b = two_processes
    placed = []
    for process in (a, b, a):
        leases.install(process)
        ctx = tenant()
        Placement().create(ctx, Placement().observe(ctx))
        placed.append(ctx)
    assert [ctx.ids["loadBalancerArn"] for ctx in placed] == [first, first, second]
    held = {lease.name: lease.holder for lease in a.reservations(RESERVATION)}
    assert held == {reservation_name(ctx.names.tenant): who
                    for ctx, who in zip(placed, "aba", strict=True)}

    # Once its rule is made, a tenant is counted in AWS, and its reservation adds nothing.
    for ctx in placed[:2]:
        _route(ctx)
    leases.install(b)
    late = tenant()
    Placement().create(late, Placement().observe(late))
    assert late.ids["loadBalancerArn"] == second  # first: 2 rules of 2; second: 1 reserved

    # Rolled back or deleted: the reservation goes with the placement.
    Placement().ensure_absent(placed[2])
    assert reservation_name(placed[2].names.tenant) not in {
        lease.name for lease in b.reservations(RESERVATION)
    }
