"""The shared observation cache against the platform: idle passes read in bulk, writes show.

Counted from the platform's request journal (what the moto server received), as
`bench.calls` counts from the client: an idle drift pass over several tenants that share
one cache, at the start of a drift interval (every listing expired), makes at most 6 AWS
reads per tenant and no write; a spec change right after is written and observed at once.
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Iterator

import pytest

from tests.integration.conftest import MakeCtx, roll_back_settled
from tests.platform.journal import clear_journal, read_journal, reads, writes
from wpenv import engine
from wpenv.engine import make_context
from wpenv.reconcilers.base import Context
from wpenv.reconcilers.observations import Observations

pytestmark = pytest.mark.e2e

# Enough tenants that the listings (about 16 calls a pass, whatever the count) spread out;
# at 1,000 they are a fraction of a read each.
TENANTS = 10
MAX_READS = 6  # per environment and drift interval (issue 12's target at 1,000)
SPEC = {"autoscaling": {"minReplicas": 2, "maxReplicas": 4, "targetCpuUtilization": 60}}


class Clock:
    """Monotonic time the test moves on to the next drift interval."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


# One list for every pass, as the operator keeps one (the roles' kinds remember the account).
RESOURCES = engine.default_resources()


def converge_until_ready(ctx: Context, timeout: float = 120.0) -> engine.Outcome:
    resources = RESOURCES
    deadline = time.monotonic() + timeout
    while True:
        outcome = engine.converge(ctx, resources)
        if outcome.ready or outcome.failure or time.monotonic() > deadline:
            return outcome
        time.sleep(outcome.retry_after or 0.5)


@pytest.fixture
def tenants(make_ctx: MakeCtx) -> Iterator[tuple[list[Context], Clock, Observations]]:
    """TENANTS environments made ready through one shared cache; rolled back after."""
    clock = Clock()
    shared = Observations(60.0, clock=clock)
    contexts = []
    for _ in range(TENANTS):
        ctx = make_ctx(**SPEC)
        ctx.observations = shared
        contexts.append(ctx)
    try:
        for ctx in contexts:
            outcome = converge_until_ready(ctx)
            assert outcome.failure is None and outcome.ready, outcome.conditions
        yield contexts, clock, shared
    finally:
        for ctx in contexts:
            ctx.observations = Observations()
            assert roll_back_settled(ctx, RESOURCES)


def test_an_idle_pass_over_tenants_reads_in_bulk(
    tenants: tuple[list[Context], Clock, Observations], platform: dict[str, str]
) -> None:
    contexts, clock, shared = tenants  # one provision for both checks: it is slow
    endpoint = platform["AWS_ENDPOINT_URL"]
    clock.offset += 60.0  # a new drift interval: every listing has expired
    clear_journal(endpoint)
    for ctx in contexts:
        outcome = engine.converge(ctx, RESOURCES)
        assert outcome.ready and outcome.events == [], outcome.events
    entries = read_journal(endpoint)
    assert writes(entries) == []
    by_action = collections.Counter(entry.action for entry in reads(entries))
    # DescribeServices takes 10 services a call over the whole cluster, which the session's
    # other tests share: its pages for their services are not these tenants' cost.
    cluster = contexts[0].settings.cluster_name
    pages = contexts[0].clients.ecs.get_paginator("list_services").paginate(cluster=cluster)
    services = sum(len(page["serviceArns"]) for page in pages)
    assert by_action["DescribeServices"] <= math.ceil(services / 10), by_action
    others = by_action["DescribeServices"] - math.ceil(TENANTS / 10)
    per_tenant = (sum(by_action.values()) - max(0, others)) / TENANTS
    assert per_tenant <= MAX_READS, f"{per_tenant:.1f} reads per tenant: {by_action}"
    listed_once = ("GetAccountAuthorizationDetails", "ListSecrets", "ListServices")
    assert all(by_action[action] == 1 for action in listed_once), by_action
    a_change_is_written_and_observed_at_once(contexts[0], shared)


def a_change_is_written_and_observed_at_once(ctx: Context, shared: Observations) -> None:
    """With every listing warm, a spec change is written and the next observe sees it."""
    changed = make_context(ctx.namespace, ctx.name,
                           {"tenantId": ctx.spec.tenant_id, "replicas": 3,
                            "autoscaling": {"minReplicas": 3, "maxReplicas": 4,
                                            "targetCpuUtilization": 60}},
                           settings=ctx.settings, clients=ctx.clients, ids=dict(ctx.ids))
    changed.observations = shared
    outcome = engine.converge(changed, RESOURCES)
    assert any(e.reason == "Updated" for e in outcome.events), outcome.events
    assert outcome.facts is not None and outcome.facts.desired == 3, outcome.facts
    again = engine.converge(changed, RESOURCES)
    assert not any(e.reason == "Updated" for e in again.events), "the update was not seen"
