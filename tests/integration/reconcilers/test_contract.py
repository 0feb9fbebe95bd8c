"""One contract every kind in the registry keeps, against the local platform.

For each kind, with what it needs already in place (the kinds before it, made by the
engine): removing what was never there writes nothing; create; observe says up to date,
ready, and finds the ids recorded; create again with the stale observation makes no
duplicate; a restarted operator with a lost status adopts it, and its create records the
same ids; delete, then delete again (writing nothing once it is gone); the orphan listing
finds it and the orphan cleanup removes it with the kind's own `remove`. The lifecycle
tests once copied into each kind's test file live here now; those files keep what is
particular to their kind (what create makes, drift, waiting for dependencies).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import (
    MakeCtx,
    aws_calls,
    role_propagated,
    settle,
    tear_down_settled,
    writes,
)
from wpenv.errors import TransientError
from wpenv.plan import TAG_ENVIRONMENT
from wpenv.reconcilers import registry
from wpenv.reconcilers.base import MISSING, Context, Found, Resource

pytestmark = pytest.mark.e2e

# Everything switched on, so that every kind is wanted.
SPEC: dict[str, Any] = {
    "identity": {"enabled": True},
    "replicas": 2,
    "autoscaling": {"minReplicas": 2, "maxReplicas": 4, "targetCpuUtilization": 60},
}
KINDS = registry.kinds()
# Kinds that exist before they serve: the service is ready once its tasks are healthy
# (its own test waits for that); every other kind is ready as soon as it is made.
ROLLS_OUT = {"Service"}


def mine(kind: Resource, ctx: Context) -> list[Found]:
    """What the kind's orphan listing finds of this environment."""
    environment = ctx.tags[TAG_ENVIRONMENT]
    return [
        found for found in kind.managed(ctx.clients, ctx.settings)
        if found.tags.get(TAG_ENVIRONMENT) == environment
        or (not found.tags and ctx.names.database in (found.id,))
    ]


def recorded(kind: Resource, ctx: Context) -> dict[str, Any]:
    """The kind's ids in the context's status."""
    return {k: v for k, v in ctx.ids.items() if k in kind.ids}
def create_when_free(kind: Resource, ctx: Context, timeout: float = 30.0) -> None:
    """Create again right after a delete: a deleted service's name is free only once it
    drained (ServiceDraining), as the operator's next passes find."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            kind.create(ctx, MISSING)
        except TransientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
        else:
            return


def lists_itself(kind: Resource) -> bool:
    """Kinds that go with another one (Cognito groups, domain, client; the scaler) do not."""
    return type(kind).managed is not Resource.managed


@pytest.fixture
def prepared(
    make_ctx: MakeCtx, request: pytest.FixtureRequest
) -> Iterator[tuple[Context, Resource]]:
    """A tenant with every kind before the one under test in place; all removed after."""
    index: int = request.param
    ctx = make_ctx(**SPEC)
    before = KINDS[:index]
    outcome = settle(ctx, before)
    assert outcome.failure is None, outcome.conditions
    assert not outcome.troubled, outcome.conditions
    role_propagated(ctx)  # the kind under test is created directly, not retried
    yield ctx, KINDS[index]
    tear_down_settled(ctx, KINDS[: index + 1])


@pytest.mark.parametrize("prepared", range(len(KINDS)), ids=[k.kind for k in KINDS],
                         indirect=True)
def test_every_kind_keeps_the_contract(
    prepared: tuple[Context, Resource], make_ctx: MakeCtx
) -> None:
    ctx, kind = prepared
    assert kind.wanted(ctx)

    never = make_ctx(**SPEC)  # a tenant with nothing at all, not even the kinds before
    with aws_calls(ctx.clients) as calls:
        assert not kind.ensure_absent(ctx), "found before it was made"
        assert not kind.ensure_absent(never)
    assert writes(calls) == [], "removing what was never there wrote"

    kind.create(ctx, MISSING)
    observed = kind.observe(ctx)
    assert observed.exists, kind.kind
    assert observed.up_to_date, observed.detail
    assert observed.ready or kind.kind in ROLLS_OUT, observed.detail
    assert set(observed.ids) == set(kind.ids), "the ids recorded are not the kind's declared ones"
    assert recorded(kind, ctx) == observed.ids

    kind.create(ctx, MISSING)  # a pass that did not see the first create
    if lists_itself(kind):
        assert len(mine(kind, ctx)) == 1, "create again made a duplicate"
    again = kind.observe(ctx)
    assert again.exists and again.up_to_date and again.ids == observed.ids
    assert recorded(kind, ctx) == observed.ids

    lost = make_ctx(tenant=ctx.spec.tenant_id, **SPEC)
    lost.ids.update({k: v for k, v in ctx.ids.items() if k not in kind.ids})
    assert recorded(kind, lost) == {}
    adopted = kind.observe(lost)
    if kind.in_aws:  # the placement: nothing in AWS shows it before the rule exists
        assert adopted.exists and adopted.ids == observed.ids, "a lost status is not adopted"
        assert adopted.up_to_date, adopted.detail
        kind.create(lost, adopted)  # a restarted operator records what it adopted
        assert recorded(kind, lost) == observed.ids
    if lists_itself(kind):
        assert len(mine(kind, ctx)) == 1, "create on a lost status made a duplicate"

    kind.delete(ctx, observed)
    kind.delete(ctx, observed)  # already gone is success
    if kind.goes_with:  # its own delete is nothing: it goes when that kind goes
        left = kind.observe(ctx)
        assert left.exists and left.up_to_date, left.detail
        registry.by_name(kind.goes_with).ensure_absent(ctx)
    assert not kind.observe(ctx).exists
    assert not kind.observe(lost).exists
    with aws_calls(ctx.clients) as calls:
        assert not kind.ensure_absent(ctx)
        assert not kind.ensure_absent(lost)
    assert writes(calls) == [], "removing what is gone wrote"
    if not lists_itself(kind):  # it goes with another kind, and so does its listing
        assert list(kind.managed(ctx.clients, ctx.settings)) == []
        return
    assert mine(kind, ctx) == [], "listed after its delete"

    create_when_free(kind, ctx)
    (found,) = mine(kind, ctx)
    assert ctx.tags.items() <= found.tags.items() or kind.kind == "Database", found.tags
    fresh = kind.refresh(ctx.clients, ctx.settings, found)
    assert fresh is not None and fresh.id == found.id and fresh.tags == found.tags
    kind.remove_tolerant(ctx.clients, ctx.settings, fresh.found)  # the orphan cleanup
    assert not kind.observe(ctx).exists
    assert kind.refresh(ctx.clients, ctx.settings, found) is None
    assert mine(kind, ctx) == []
