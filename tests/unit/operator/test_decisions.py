"""The handlers' decisions: phases, the Suspended condition, tenant ownership."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wpenv import engine
from wpenv.api.models import Phase
from wpenv.errors import PermanentError
from wpenv.operator import decisions
from wpenv.reconcilers.base import Facts


def _outcome(*, ready: bool = False, failed: bool = False) -> engine.Outcome:
    out = engine.Outcome(ready=ready)
    if failed:
        out.failure = PermanentError("Boom", "boom")
    return out


def test_next_phase_follows_the_hld_table() -> None:
    phase = decisions.next_phase
    assert phase(_outcome(), was_active=False, suspended=False, phase=None) == Phase.PROVISIONING
    assert phase(_outcome(ready=True), was_active=False, suspended=False,
                 phase="Provisioning") == Phase.ACTIVE
    # A suspend asked for while provisioning: Active first, suspended in the next pass.
    assert phase(_outcome(ready=True), was_active=False, suspended=True,
                 phase="Provisioning") == Phase.ACTIVE
    assert phase(_outcome(failed=True), was_active=False, suspended=False,
                 phase="Provisioning") == Phase.FAILED
    assert phase(_outcome(ready=True), was_active=True, suspended=True,
                 phase="Active") == Phase.SUSPENDED
    # Still scaling down or up: stays where it was until converged.
    assert phase(_outcome(), was_active=True, suspended=True, phase="Active") == Phase.ACTIVE
    assert phase(_outcome(), was_active=True, suspended=False,
                 phase="Suspended") == Phase.SUSPENDED
    # A failed change of an Active environment never makes it Failed: it keeps serving.
    assert phase(_outcome(failed=True), was_active=True, suspended=False,
                 phase="Active") == Phase.ACTIVE


def test_suspend_condition() -> None:
    cond = decisions.suspend_condition
    deferred = cond(True, False, False, {})
    assert deferred is not None and deferred.reason == "Deferred"
    assert "once the environment is Active" in deferred.message
    done = cond(True, True, True, {})
    assert done is not None and (done.status, done.reason) == ("True", "Suspended")
    going = cond(True, True, False, {})
    assert going is not None and going.reason == "Suspending"
    assert cond(False, True, True, {}) is None, "never suspended: no condition at all"
    was = {"conditions": [{"type": "Suspended", "status": "True"}]}
    resumed = cond(False, True, True, was)
    assert resumed is not None and (resumed.status, resumed.reason) == ("False", "Resumed")
    resuming = cond(False, True, False, was)
    assert resuming is not None and resuming.reason == "Resuming"


def test_the_older_environment_holds_the_tenant() -> None:
    index = {"acme": [("2026-11-27T10:00:01Z", "b", "shop"), ("2026-11-27T10:00:00Z", "a", "x")]}
    assert decisions.tenant_holder(index, "acme", ("a", "x")) is None
    assert decisions.tenant_holder(index, "acme", ("b", "shop")) == "a/x"
    assert decisions.tenant_holder(index, "other", ("b", "shop")) is None


def test_a_transition_is_announced_once_and_forgotten_with_the_environment() -> None:
    said = decisions.Announcements()
    assert said.first_time("u1", "Rollout", "RolledBack")
    assert not said.first_time("u1", "Rollout", "RolledBack"), "a stale status says it again"
    assert said.first_time("u2", "Rollout", "RolledBack"), "per environment"
    assert said.first_time("u1", "Rollout", "Completed")
    said.forget("u1")
    assert said.first_time("u1", "Rollout", "Completed")


def test_a_pass_nobody_will_make_is_noticed_after_the_grace() -> None:
    from datetime import UTC, datetime, timedelta  # noqa: PLC0415

    now = datetime(2026, 11, 27, 16, 0, tzinfo=UTC)

    def ago(seconds: float) -> str:
        return (now - timedelta(seconds=seconds)).isoformat()

    unhandled = decisions.unhandled
    ready = {"type": "Ready", "status": "True", "reason": "Active"}
    converging = {"type": "Ready", "status": "False", "reason": "Progressing"}
    settled = {"observedGeneration": 3, "phase": "Active", "conditions": [ready]}
    created = ago(3600)
    assert not unhandled({}, settled, 3, created=created, now=now, grace=15)
    # A handler was due 2 s ago (kopf sleeps, then runs it): not stuck.
    busy = {"bbws.io/reconcile.spec": f'{{"started": "{ago(60)}", "delayed": "{ago(2)}"}}'}
    assert not unhandled(busy, settled, 4, created=created, now=now, grace=15)
    # Due a minute ago and never run: kopf dropped it (a reverted change).
    dropped = {"bbws.io/reconcile.spec": f'{{"started": "{ago(90)}", "delayed": "{ago(60)}"}}'}
    assert unhandled(dropped, settled, 4, created=created, now=now, grace=15)
    # Observed, but still converging with nobody polling (after a dropped handler).
    polling = {**settled, "conditions": [converging]}
    assert unhandled(dropped, polling, 3, created=created, now=now, grace=15)
    assert not unhandled(busy, polling, 3, created=created, now=now, grace=15)
    # No record at all for a new generation: stuck once the grace passed.
    assert unhandled({"other/key": "x"}, settled, 4, created=created, now=now, grace=15)
    # A brand-new object gets the grace from its creation.
    assert not unhandled({}, {}, 1, created=ago(5), now=now, grace=15)
    # Failed waits for a person.
    failed = {"observedGeneration": 3, "phase": "Failed", "conditions": [converging]}
    assert not unhandled(dropped, failed, 3, created=created, now=now, grace=15)
    # A provision (queued, or retrying) that nobody comes back to: stuck; with one due: not.
    for reason, phase in (("Queued", "PendingProvisioning"), ("AwsRetrying", "Provisioning"),
                          ("AwsRetrying", "PendingProvisioning")):
        waiting = {"observedGeneration": 3, "phase": phase,
                   "conditions": [{"type": "Ready", "status": "False", "reason": reason}]}
        assert unhandled(dropped, waiting, 3, created=created, now=now, grace=15)
        assert not unhandled(busy, waiting, 3, created=created, now=now, grace=15)


def test_a_handler_under_way_is_told_from_a_finished_or_abandoned_one() -> None:
    from datetime import UTC, datetime  # noqa: PLC0415

    now = datetime(2026, 11, 27, 16, 0, 5, tzinfo=UTC)
    running = {"bbws.io/reconcile.spec": '{"started": "2026-11-27T16:00:00+00:00"}'}
    assert decisions.live_handler(running, now=now, grace=15)
    done = {"bbws.io/reconcile": '{"started": "2026-11-27T16:00:00+00:00", "success": true}'}
    assert not decisions.live_handler(done, now=now, grace=15)
    assert not decisions.live_handler({"bbws.io/kopf-managed": "yes"}, now=now, grace=15)
    abandoned = {"bbws.io/reconcile.spec": '{"started": "2026-11-27T15:00:00+00:00"}'}
    assert not decisions.live_handler(abandoned, now=now, grace=15)


def test_pass_conditions_add_rollout_and_suspended() -> None:
    outcome = engine.Outcome(ready=True, facts=Facts(rollout_state="COMPLETED", serving="x:1"))
    conds = decisions.pass_conditions(outcome, suspended=True, was_active=True, status={})
    assert [(c.type, c.reason) for c in conds] == [
        ("Rollout", "Completed"), ("Suspended", "Suspended"), ("Ready", "Suspended")
    ]
    first = decisions.pass_conditions(outcome, suspended=True, was_active=False, status={})
    assert [(c.type, c.reason) for c in first] == [("Rollout", "Completed"),
                                                   ("Suspended", "Deferred")]


def _claim(name: str, created: str, prefix: str, *, host: str = "",
           status: Mapping[str, Any] | None = None) -> decisions.RouteClaim:
    spec = {"tenantId": name, "routing": {"pathPrefix": prefix, "host": host}}
    claim = decisions.route_claim(created, "ns", name, spec, status or {})
    assert claim is not None
    return claim


SERVING = {"phase": "Active", "provisioning": {"startedAt": "s", "finishedAt": "f"}}
STARTED = {"phase": "Provisioning", "provisioning": {"startedAt": "s"}}


def test_the_older_claim_on_an_overlapping_route_wins() -> None:
    old = _claim("old", "2026-01-01T00:00:00Z", "/a")
    new = _claim("new", "2026-02-01T00:00:00Z", "/a/b")
    index = {decisions.ROUTES: [new, old]}
    assert decisions.route_holder(index, new) == "ns/old"
    assert decisions.route_holder(index, old) is None
    apart = _claim("apart", "2026-03-01T00:00:00Z", "/ab")
    assert decisions.route_holder({decisions.ROUTES: [old, apart]}, apart) is None


def test_the_same_creation_time_is_ordered_by_name() -> None:
    b, a = _claim("b", "2026-01-01T00:00:00Z", "/x"), _claim("a", "2026-01-01T00:00:00Z", "/x")
    index = {decisions.ROUTES: [b, a]}
    assert (decisions.route_holder(index, a), decisions.route_holder(index, b)) == (None, "ns/a")


def test_one_that_serves_keeps_its_route_against_an_older_one() -> None:
    older = _claim("older", "2026-01-01T00:00:00Z", "/a")
    serving = _claim("serving", "2026-02-01T00:00:00Z", "/a", status=SERVING)
    started = _claim("started", "2026-03-01T00:00:00Z", "/a/b", status=STARTED)
    index = {decisions.ROUTES: [older, serving, started]}
    assert decisions.route_holder(index, older) == "ns/serving"
    assert decisions.route_holder(index, started) == "ns/serving"
    assert decisions.route_holder({decisions.ROUTES: [older, started]}, older) == "ns/started"


def test_a_serving_one_may_not_move_onto_another_serving_route_whatever_its_age() -> None:
    older = _claim("older", "2026-01-01T00:00:00Z", "/b", status=SERVING)
    newer = _claim("newer", "2026-02-01T00:00:00Z", "/b/c", status=SERVING)
    index = {decisions.ROUTES: [older, newer]}
    assert decisions.route_holder(index, older) == "ns/newer"
    assert decisions.route_holder(index, newer) == "ns/older"


def test_what_claims_no_route() -> None:
    assert decisions.holds_no_route({"phase": "Failed"})
    assert not decisions.holds_no_route({**SERVING, "phase": "Failed"}), "it served"
    assert not decisions.holds_no_route({"phase": "PendingProvisioning"})
    unparsable = decisions.route_claim("t", "ns", "x", {"tenantId": "Bad"}, {})
    assert unparsable is None
    assert decisions.route_holder({}, _claim("alone", "t", "/a")) is None


def test_a_status_this_process_wrote_outranks_the_index_that_lags_behind_it() -> None:
    first = _claim("first", "t1", "/first-moved", status=SERVING)
    moving_back = _claim("first", "t1", "/first", status=SERVING)
    lagging = {decisions.ROUTES: [first, _claim("second", "t2", "/first/blog", status=STARTED)]}
    assert decisions.route_holder(lagging, moving_back) is None, "the index alone lets it pass"
    served = _claim("second", "t2", "/first/blog", status=SERVING)
    corrected = decisions.with_own_writes(lagging, {"ns/second": served})
    assert decisions.route_holder(corrected, moving_back) == "ns/second"
    released = decisions.with_own_writes(lagging, {"ns/second": None})
    assert [c.owner for c in released[decisions.ROUTES]] == ["ns/first"]
