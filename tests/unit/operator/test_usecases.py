"""The handlers' use cases, called directly: what each path writes, posts and requeues.

The layers below (the pass's Context, the converge pass, deprovisioning, retain) are
replaced at their one call site, so each test says what the pass found and checks only
what the use case makes of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import kopf
import prometheus_client
import pytest

from tests.unit.kube_wire import answered, refused
from wpenv import conditions as st
from wpenv import engine
from wpenv.api.models import Phase
from wpenv.deprovision import STEPS, Archive
from wpenv.errors import PermanentError, TransientError
from wpenv.operator import decisions, usecases
from wpenv.operator.app import App
from wpenv.operator.result import GiveUp, Result, Retry
from wpenv.operator.throttle import ProvisionSlots
from wpenv.operator.usecases import Env
from wpenv.plan import TAG_RETAINED
from wpenv.settings import Settings

SETTINGS = Settings(archive_bucket="arch", retry_base_seconds=1, retry_max_seconds=10)
READY = st.Cond(st.READY, st.TRUE, "Active", "All resources are in place and serving")
PROGRESSING = st.Cond(st.READY, st.FALSE, "Progressing", "Service: 0/2 tasks running")
def NOWHERE(event: engine.Event) -> None:
    """Events that must go out at once: none expected here."""
    raise AssertionError(f"posted {event}")


def _ignore(event: engine.Event) -> None:
    """Events that go out at once, where a test does not look at them."""


OLDER = {"acme": [("2026-11-27T10:00:00Z", "other", "shop")]}


def _app(limit: int = 2) -> App:
    clients: Any = None  # nothing here reaches AWS
    return App(settings=SETTINGS, clients=clients, slots=ProvisionSlots(limit), resources=[])


def _env(
    status: Mapping[str, Any] | None = None, *, generation: int = 1, **spec: Any
) -> Env:
    return Env(namespace="ns", name="acme", uid="u1", generation=generation,
               spec={"tenantId": "acme", **spec}, status=dict(status or {}))


def _cond(result: Result, type_: str) -> Mapping[str, Any]:
    found = st.find(result.status.get("conditions") or [], type_)
    assert found is not None, f"no {type_} condition in {result.status}"
    return found


def _sample(name: str, **labels: str) -> float:
    return prometheus_client.REGISTRY.get_sample_value(name, labels) or 0.0


@dataclass
class Below:
    """Stand-ins for the layers below: the outcomes the passes return, what they got."""

    outcomes: list[engine.Outcome] = field(default_factory=list)
    specs: list[dict[str, Any]] = field(default_factory=list)
    passes: list[dict[str, Any]] = field(default_factory=list)
    waits: list[int] = field(default_factory=list)  # each pass's `waited`
    deletion_policy: str = "Delete"
    # What the API server answers now ({"object": None}: gone); None: the event's object.
    now: dict[str, Any] | None = None
    reads: int = 0

    def context(self, app: App, env: Env, spec: Mapping[str, Any] | None = None) -> Any:
        self.specs.append(dict(env.spec if spec is None else spec))
        return SimpleNamespace(
            spec=SimpleNamespace(deletion_policy=self.deletion_policy),
            names=SimpleNamespace(database="wp_acme"), exported=[], ids={},
        )

    def converge(self, app: App, ctx: Any, *, attempt: int, may_roll_back: bool,
                 waited: int = 0) -> Any:
        self.passes.append({"attempt": attempt, "may_roll_back": may_roll_back})
        self.waits.append(waited)
        return self.outcomes.pop(0)

    def current(self, env: Env) -> Mapping[str, Any] | None:
        """The object as the API server has it now: as the event shows it, unless told."""
        self.reads += 1
        return {"metadata": {"uid": env.uid}} if self.now is None else self.now.get("object")


@pytest.fixture
def below(monkeypatch: pytest.MonkeyPatch) -> Below:
    fake = Below()
    monkeypatch.setattr(usecases, "_context", fake.context)
    monkeypatch.setattr(usecases, "_converge", fake.converge)
    monkeypatch.setattr(usecases, "observed_fields", lambda *_: {"selector": "tenant=acme"})
    monkeypatch.setattr(usecases, "_current", fake.current)
    return fake


# --- reconcile ------------------------------------------------------------------------------


def test_failed_stays_failed_until_the_spec_changes(below: Below) -> None:
    failed = {"phase": "Failed", "observedGeneration": 1}
    assert usecases.reconcile(_app(), _env(failed), NOWHERE) == Result()
    assert not below.passes
    below.outcomes.append(engine.Outcome(retry_after=3.0, conditions=[PROGRESSING]))
    changed = usecases.reconcile(_app(), _env(failed, generation=2), _ignore)
    assert changed.status["phase"] == "Provisioning" and below.passes


def test_a_second_manifest_for_a_tenant_fails_before_touching_anything(below: Below) -> None:
    result = usecases.reconcile(_app(), replace(_env(), tenants=OLDER), NOWHERE)
    message = (
        "tenantId acme belongs to other/shop; each tenant has one environment (its AWS "
        "resources and database are named after the tenant)"
    )
    assert result.requeue == GiveUp(message)
    assert result.events == (engine.Event("Warning", "TenantIdInUse", message),)
    assert result.status["phase"] == "Failed"
    assert result.status["provisioning"]["queuedAt"], "accepted first"
    assert _cond(result, "Ready")["reason"] == "TenantIdInUse"
    assert not below.passes


def test_an_active_environment_is_never_told_its_tenant_is_taken(below: Below) -> None:
    below.outcomes.append(engine.Outcome(ready=True, conditions=[READY]))
    active = {"phase": "Active", "provisioning": {"startedAt": "x", "finishedAt": "y"}}
    result = usecases.reconcile(_app(), replace(_env(active), tenants=OLDER), NOWHERE)
    assert result.requeue is None and below.passes == [{"attempt": 0, "may_roll_back": False}]


def _routes(*claims: tuple[str, str, Mapping[str, Any]]) -> dict[str, Any]:
    """The `routes` index of older environments: (name, pathPrefix, status) each."""
    found: list[decisions.RouteClaim] = []
    for name, prefix, status in claims:
        spec = {"tenantId": name, "routing": {"pathPrefix": prefix}}
        claim = decisions.route_claim(OLDER["acme"][0][0], "other", name, spec, status)
        found += decisions.route_index_entry(claim, status).values()
    return {decisions.ROUTES: found}


def _newer(status: Mapping[str, Any] | None = None) -> Env:
    """`_env`, created after everything in `_routes`."""
    return replace(_env(status), created="2026-11-28T10:00:00Z")


ACME_ROUTE_TAKEN = (
    "route /acme on any host overlaps the route of other/shop, which holds it; a request "
    "may go to one environment only"
)


def test_a_new_environment_on_a_claimed_route_fails_before_touching_anything(
    below: Below,
) -> None:
    routes = _routes(("shop", "/acme/shop", {}))
    app = _app(limit=1)
    assert app.slots.acquire("u1"), "held since an earlier pass"
    result = usecases.reconcile(app, replace(_newer(), routes=routes), NOWHERE)
    assert app.slots.in_use == 0, "a Failed environment gives its slot back"
    assert result.requeue == GiveUp(ACME_ROUTE_TAKEN)
    assert result.events == (engine.Event("Warning", "RouteInUse", ACME_ROUTE_TAKEN),)
    assert result.status["phase"] == "Failed"
    assert _cond(result, "Ready")["reason"] == "RouteInUse"
    assert not below.passes
    free = _routes(("shop", "/acmeshop", {}), ("gone", "/acme", {"phase": "Failed"}))
    below.outcomes.append(engine.Outcome(retry_after=3.0, conditions=[PROGRESSING]))
    assert usecases.reconcile(_app(), replace(_newer(), routes=free), _ignore).status["phase"] == (
        "Provisioning"
    ), "a different route, or one Failed before it served, is in nobody's way"


def test_a_serving_environment_keeps_its_phase_when_a_route_change_is_refused(
    below: Below,
) -> None:
    active = {"phase": "Active", "provisioning": {"startedAt": "x", "finishedAt": "y"}}
    routes = _routes(("shop", "/acme", {"phase": "Active", **active}))
    result = usecases.reconcile(_app(), replace(_newer(active), routes=routes), NOWHERE)
    assert result.requeue == GiveUp(ACME_ROUTE_TAKEN)
    assert "phase" not in result.status, "it stays Active"
    assert _cond(result, "Ready")["reason"] == "RouteInUse"
    assert not below.passes
    serving = replace(_newer({**_settled(), **active}), routes=routes)
    assert usecases.drift(_app(), serving) == Result()
    assert not below.passes, "drift would apply the refused route"


def test_without_a_slot_it_waits_in_the_queue(below: Below) -> None:
    app = _app(limit=1)
    assert app.slots.acquire("someone-else")
    result = usecases.reconcile(app, _env(), NOWHERE)
    assert result.requeue == Retry(usecases.QUEUED, usecases.QUEUE_POLL_SECONDS)
    assert result.status["phase"] == "PendingProvisioning"
    assert result.status["queuePosition"] == 1
    assert _cond(result, "Ready")["message"] == (
        "Waiting for a provisioning slot (1 at once): number 1 in the queue"
    )
    assert _sample("wpenv_provisions_queued") == 1
    assert not below.passes and not result.events


def test_a_queue_poll_that_moved_nobody_writes_nothing(below: Below) -> None:
    app = _app(limit=1)
    assert app.slots.acquire("holder")
    second, third = replace(_env(), uid="second"), replace(_env(), name="beta", uid="third")
    status = dict(usecases.reconcile(app, second, NOWHERE).status)
    queued = usecases.reconcile(app, third, NOWHERE)
    assert queued.status["queuePosition"] == 2
    third = replace(third, status=dict(queued.status))
    assert usecases.reconcile(app, third, NOWHERE).status == {}, "same place: no write"
    app.forget("second")  # the one ahead was deleted: third moves up, and says so
    moved = usecases.reconcile(app, third, NOWHERE)
    assert moved.status["queuePosition"] == 1
    assert set(moved.status) == {"queuePosition", "conditions"}
    assert status["queuePosition"] == 1


def test_the_queue_position_goes_when_the_slot_comes(below: Below) -> None:
    app = _app(limit=1)
    assert app.slots.acquire("holder")
    queued = usecases.reconcile(app, _env(), NOWHERE)
    app.slots.release("holder")
    below.outcomes.append(engine.Outcome(retry_after=3.0, conditions=[PROGRESSING]))
    started = usecases.reconcile(app, _env(dict(queued.status)), _ignore)
    assert "queuePosition" in started.status and started.status["queuePosition"] is None
    assert "nextRetryAt" not in started.status, "a routine poll has no retry time"


def test_a_troubled_pass_says_when_it_tries_again(below: Below) -> None:
    app = _app()
    throttled = st.Cond(st.READY, st.FALSE, "AwsError", "ECS: ThrottlingException")
    below.outcomes.append(engine.Outcome(retry_after=8.0, troubled=True, conditions=[throttled]))
    before = datetime.now(UTC)
    result = usecases.reconcile(app, _env(), _ignore)
    at = datetime.fromisoformat(result.status["nextRetryAt"].replace("Z", "+00:00"))
    assert 6 <= (at - before).total_seconds() <= 10
    below.outcomes.append(engine.Outcome(retry_after=3.0, conditions=[PROGRESSING]))
    recovered = usecases.reconcile(app, _env(dict(result.status)), _ignore)
    assert recovered.status["nextRetryAt"] is None, "cleared once a pass goes well"


def test_each_pass_learns_how_many_before_it_only_waited(below: Below) -> None:
    app = _app()
    created = engine.Event("Normal", "Created", "Service created")
    below.outcomes += [
        engine.Outcome(retry_after=0.2, conditions=[PROGRESSING], events=[created], acted=True),
        engine.Outcome(retry_after=0.4, conditions=[PROGRESSING]),
        engine.Outcome(retry_after=0.8, conditions=[PROGRESSING]),
        engine.Outcome(retry_after=0.2, conditions=[PROGRESSING], events=[created], acted=True),
        engine.Outcome(retry_after=0.4, conditions=[PROGRESSING]),
    ]
    status: dict[str, Any] = {}
    for _ in range(5):
        status.update(usecases.reconcile(app, _env(dict(status)), _ignore).status)
    assert below.waits == [0, 0, 1, 2, 0], "the engine doubles the delay per wait (poll_delay)"


def test_the_back_of_the_queue_polls_less_often_than_the_front() -> None:
    polls = [usecases.queue_poll(place, 10) for place in (1, 10, 11, 30, 31, 5000)]
    front = usecases.QUEUE_POLL_SECONDS
    assert polls == [front, front, 2 * front, 3 * front, 4 * front,
                     usecases.QUEUE_POLL_MAX_SECONDS]


def test_a_waiter_with_an_expected_wait_looks_after_half_of_it() -> None:
    polls = [usecases.queue_poll(900, 10, expected) for expected in (0.0, 1.5, 30.0, 500.0)]
    assert polls == [usecases.QUEUE_POLL_SECONDS, usecases.QUEUE_POLL_SECONDS, 15.0,
                     usecases.QUEUE_POLL_MAX_SECONDS]


def test_a_resume_of_an_environment_at_rest_makes_no_pass(below: Below) -> None:
    times = {"startedAt": "2026-12-01T10:00:00Z", "finishedAt": "2026-12-01T10:09:00Z"}
    ready = st.status_patch({}, 1, phase=Phase.ACTIVE, conditions=[READY])
    active = _env({**ready, "provisioning": times})
    assert usecases.reconcile(_app(), active, NOWHERE, resumed=True) == Result()
    assert not below.passes, "no pass, so no AWS call"
    for unsettled in (replace(active, spec={**active.spec, "suspended": True}),  # a move
                      replace(active, generation=2)):  # a spec not yet handled
        below.outcomes.append(engine.Outcome(retry_after=3.0, conditions=[PROGRESSING]))
        usecases.reconcile(_app(), unsettled, _ignore, resumed=True)
    assert len(below.passes) == 2
    below.outcomes.append(engine.Outcome(ready=True, conditions=[READY]))
    usecases.reconcile(_app(), active, NOWHERE)  # a spec change (not a resume) always passes
    assert len(below.passes) == 3


def test_a_first_pass_announces_the_provision_then_polls(below: Below) -> None:
    app, posted = _app(), list[engine.Event]()
    created = engine.Event("Normal", "Created", "UserPool created")
    below.outcomes.append(
        engine.Outcome(retry_after=3.0, conditions=[PROGRESSING], events=[created])
    )
    result = usecases.reconcile(app, _env(), posted.append)
    assert posted == [engine.Event("Normal", "Provisioning", "Provisioning started")]
    assert result.events == (created,)
    assert result.requeue == Retry(usecases.CONVERGING, 3.0)
    assert result.status["phase"] == "Provisioning"
    assert result.status["selector"] == "tenant=acme"
    assert set(result.status["provisioning"]) == {"queuedAt", "startedAt"}
    assert below.passes == [{"attempt": 0, "may_roll_back": True}]
    assert app.slots.in_use == 1, "the slot is held until the provision ends"

    below.outcomes.append(engine.Outcome(retry_after=3.0, conditions=[PROGRESSING]))
    again = usecases.reconcile(app, _env({**result.status}), posted.append)
    assert len(posted) == 1, "started once"
    assert again.status == {}, "a poll that changed nothing writes nothing"


def test_the_pass_that_converges_makes_it_active(below: Below) -> None:
    app = _app()
    started = (datetime.now(UTC) - timedelta(seconds=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    before = _sample("wpenv_reconcile_passes_total", result="ready")
    below.outcomes.append(engine.Outcome(ready=True, conditions=[READY]))
    status = {"phase": "Provisioning", "provisioning": {"queuedAt": "q", "startedAt": started}}
    result = usecases.reconcile(app, _env(status), NOWHERE)
    times = result.status["provisioning"]
    assert result.status["phase"] == "Active" and result.requeue is None
    assert 9 <= times["durationSeconds"] <= 60 and times["withinTarget"] is True
    assert times["finishedAt"] and times["queuedAt"] == "q"
    assert result.events == (
        engine.Event("Normal", "Active", f"Active after {times['durationSeconds']}s"),
    )
    assert app.slots.in_use == 0, "the slot goes to the next in line"
    assert _sample("wpenv_reconcile_passes_total", result="ready") == before + 1


def test_a_stale_view_of_an_environment_made_active_here_is_not_queued(below: Below) -> None:
    app = _app(limit=1)
    below.outcomes.append(engine.Outcome(ready=True, conditions=[READY]))
    status = {"phase": "Provisioning", "provisioning": {"queuedAt": "q",
                                                        "startedAt": "2026-12-01T10:00:00Z"}}
    assert usecases.reconcile(app, _env(status), _ignore).status["phase"] == "Active"
    assert app.slots.acquire("someone-else")  # all slots taken now
    below.outcomes.append(engine.Outcome(ready=True, conditions=[READY]))
    stale = usecases.reconcile(app, _env(status), _ignore)  # the watch lags: the old status
    assert stale.requeue is None and "queuePosition" not in stale.status
    assert below.passes[-1] == {"attempt": 0, "may_roll_back": False}, "passed as Active"


def test_provisions_in_flight_and_queued_go_up_and_down(below: Below) -> None:
    app = _app(limit=1)
    first, second = replace(_env(), uid="first"), replace(_env(), name="beta", uid="second")
    below.outcomes.append(engine.Outcome(retry_after=3.0, conditions=[PROGRESSING]))
    provisioning = usecases.reconcile(app, first, _ignore)
    queued = usecases.reconcile(app, second, NOWHERE)
    assert queued.requeue == Retry(usecases.QUEUED, usecases.QUEUE_POLL_SECONDS)
    gauges = ("wpenv_provisions_running", "wpenv_provisions_queued")
    assert [_sample(g) for g in gauges] == [1, 1]
    below.outcomes.append(engine.Outcome(ready=True, conditions=[READY]))
    usecases.reconcile(app, replace(first, status=dict(provisioning.status)), _ignore)
    assert [_sample(g) for g in gauges] == [0, 1], "Active gives the slot back"
    below.outcomes.append(engine.Outcome(retry_after=3.0, conditions=[PROGRESSING]))
    usecases.reconcile(app, second, _ignore)
    assert [_sample(g) for g in gauges] == [1, 0], "the next in line took it"
    app.forget("second")  # deleted while provisioning
    assert [_sample(g) for g in gauges] == [0, 0]


def _active(suspended: bool) -> Env:
    times = {"startedAt": "2026-12-01T10:00:00Z", "finishedAt": "2026-12-01T10:09:00Z"}
    phase = "Active" if suspended else "Suspended"
    return _env({"phase": phase, "provisioning": times}, suspended=suspended)


@pytest.mark.parametrize("move", ["suspend", "resume"])
def test_a_suspend_or_resume_is_timed_from_its_first_pass_to_the_phase(
    below: Below, move: str
) -> None:
    app, env = _app(), _active(suspended=move == "suspend")
    count = f"wpenv_{move}_duration_seconds_count"
    before = _sample(count)
    below.outcomes += [engine.Outcome(retry_after=3.0, conditions=[PROGRESSING]),
                       engine.Outcome(retry_after=3.0, conditions=[PROGRESSING]),
                       engine.Outcome(ready=True, conditions=[READY])]
    first = usecases.reconcile(app, env, NOWHERE)
    assert first.status.get("phase") in (None, env.status["phase"]), "the phase waits"
    usecases.reconcile(app, env, NOWHERE)
    assert _sample(count) == before, "not there yet"
    settled = usecases.reconcile(app, env, NOWHERE)
    assert settled.status["phase"] == ("Suspended" if move == "suspend" else "Active")
    assert _sample(count) == before + 1
    assert app.stopwatch.stop(env.uid, move) is None, "timed once"


def test_a_suspend_asked_for_while_provisioning_waits_for_active(below: Below) -> None:
    below.outcomes.append(engine.Outcome(ready=True, conditions=[READY]))
    status = {"phase": "Provisioning", "provisioning": {"startedAt": st.now_rfc3339()}}
    result = usecases.reconcile(_app(), _env(status, suspended=True), NOWHERE)
    assert below.specs[0]["suspended"] is False, "provisioned serving first"
    assert result.status["phase"] == "Active"
    assert _cond(result, "Suspended")["reason"] == "Deferred"
    assert result.requeue == Retry(usecases.DEFERRED_SUSPEND, 0.1)


def test_a_permanent_failure_fails_a_provision_but_not_an_active_one(below: Below) -> None:
    app = _app()
    broken = engine.Outcome(failure=PermanentError("Boom", "it broke"))
    below.outcomes.append(broken)
    result = usecases.reconcile(app, _env({"phase": "Provisioning"}), _ignore)
    assert result.status["phase"] == "Failed" and result.requeue == GiveUp("it broke")
    assert app.slots.in_use == 0
    below.outcomes.append(broken)
    active = {"phase": "Active", "provisioning": {"finishedAt": "y"}}
    kept = usecases.reconcile(app, _env(active), NOWHERE)
    assert "phase" not in kept.status and kept.requeue == GiveUp("it broke")


# --- catch-up and drift ------------------------------------------------------------------------


def test_catch_up_passes_only_for_a_generation_nobody_handles(below: Below) -> None:
    app = _app()
    long_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    settled = {"phase": "Active", "observedGeneration": 1, "provisioning": {"finishedAt": "y"}}
    env = Env(namespace="ns", name="acme", uid="u1", generation=1, spec={"tenantId": "acme"},
              status=settled, created=long_ago)
    assert asyncio.run(usecases.catch_up(app, env, NOWHERE)) == Result()
    behind = replace(env, generation=2)
    with app.lock_for("u1"):
        assert asyncio.run(usecases.catch_up(app, behind, NOWHERE)) == Result()
    assert not below.passes
    below.outcomes.append(engine.Outcome(ready=True, conditions=[READY]))
    result = asyncio.run(usecases.catch_up(app, behind, NOWHERE))
    assert below.passes and result.status["observedGeneration"] == 2


def _settled(**extra: Any) -> dict[str, Any]:
    return {
        "phase": "Active", "observedGeneration": 1, "selector": "tenant=acme",
        "conditions": st.merge_conditions([], [READY], 1), **extra,
    }


def test_drift_checks_only_a_settled_environment_nobody_is_changing(below: Below) -> None:
    app = _app()
    assert usecases.drift(app, _env({"phase": "Provisioning", "observedGeneration": 1})) == (
        Result()
    )
    assert usecases.drift(app, _env(_settled(), generation=2)) == Result()
    deleting = replace(_env(_settled()), deleting=True)
    assert usecases.drift(app, deleting) == Result()
    running = {"bbws.io/reconcile.spec": f'{{"started": "{datetime.now(UTC).isoformat()}"}}'}
    busy = replace(_env(_settled()), annotations=running)
    assert usecases.drift(app, busy) == Result()
    with app.lock_for("u1"):
        assert usecases.drift(app, _env(_settled())) == Result()
    assert not below.passes


def test_an_idle_drift_pass_writes_and_posts_nothing(below: Below) -> None:
    before = _sample("wpenv_drift_passes_total")
    below.outcomes.append(engine.Outcome(ready=True, conditions=[READY]))
    assert usecases.drift(_app(), _env(_settled())) == Result()
    assert below.passes == [{"attempt": 0, "may_roll_back": False}]
    assert _sample("wpenv_drift_passes_total") == before + 1


def test_a_repair_is_announced_as_drift_corrected(below: Below) -> None:
    before = _sample("wpenv_drift_corrections_total")
    repairs = [engine.Event("Normal", "Updated", "Service updated"),
               engine.Event("Normal", "Created", "DatabaseSecret created")]
    below.outcomes.append(engine.Outcome(ready=True, conditions=[READY], events=repairs))
    result = usecases.drift(_app(), _env(_settled()))
    assert result.events == (
        engine.Event("Normal", "DriftCorrected", "Service updated; DatabaseSecret created"),
    )
    assert result.status == {} and result.requeue is None
    assert _sample("wpenv_drift_corrections_total") == before + 2


def test_a_persisting_failure_is_reported_once(below: Below) -> None:
    warning = engine.Event("Warning", "Boom", "Service: it broke")
    failed = st.Cond(st.READY, st.FALSE, "Boom", "it broke")

    def broken() -> engine.Outcome:
        return engine.Outcome(failure=PermanentError("Boom", "it broke"), events=[warning],
                              conditions=[failed])

    below.outcomes += [broken(), broken()]
    first = usecases.drift(_app(), _env(_settled()))
    assert first.events == (warning,) and _cond(first, "Ready")["reason"] == "Boom"
    again = usecases.drift(_app(), _env({**_settled(), **first.status}))
    assert again.events == () and again.status == {}


# --- deletion --------------------------------------------------------------------------------


@dataclass
class Steps:
    """A Deprovisioner stand-in: reports step 1, archives the database, or fails."""

    fail: Exception | None = None
    archives: list[Archive] = field(default_factory=list)

    def __call__(self, ctx: Any, resources: Any, archive: Archive, report: Any) -> Any:
        def run() -> None:
            self.archives.append(archive)
            report(1, "routing removed (ListenerRule)")
            if self.fail is not None:
                raise self.fail
            archive.locations["database"] = archive.uri("database.sql.gz")

        return SimpleNamespace(run=run)


def _delete(app: App, env: Env, tenants: Mapping[Any, Any] | None = None) -> tuple[
    Result, list[engine.Event], list[Mapping[str, Any]]
]:
    posted: list[engine.Event] = []
    written: list[Mapping[str, Any]] = []
    result = usecases.delete(app, replace(env, tenants=tenants or {}), retry=2, post=posted.append,
                             write=written.append)
    return result, posted, written


def test_a_manifest_that_lost_its_tenant_removes_nothing(below: Below) -> None:
    app = _app()
    app.slots.acquire("u1")
    result, posted, written = _delete(app, _env(), OLDER)
    message = "tenantId acme belongs to other/shop; this manifest owns nothing"
    assert result == Result(events=(engine.Event("Normal", "NothingToRemove", message),))
    assert not posted and not written and app.slots.in_use == 0


def test_retain_tags_and_releases(below: Below, monkeypatch: pytest.MonkeyPatch) -> None:
    below.deletion_policy = "Retain"
    monkeypatch.setattr(usecases, "retain", lambda ctx, resources: ["serviceArn", "userPoolId"])
    result, posted, written = _delete(_app(), _env())
    message = (
        f"deletionPolicy Retain: 2 AWS resources tagged {TAG_RETAINED}=true and left in "
        "place, with database wp_acme and the tenant's files"
    )
    assert result == Result(events=(engine.Event("Normal", "Retained", message),))
    assert not posted and not written


def test_deprovisioning_reports_each_step_and_writes_deprovisioned_last(
    below: Below, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = Steps()
    monkeypatch.setattr(usecases, "Deprovisioner", steps)
    app = _app()
    app.streak("u1", engine.Outcome(troubled=True))
    result, posted, written = _delete(app, _env({"phase": "Active"}))
    uri = steps.archives[0].uri()
    assert uri.startswith("s3://arch/archives/ns/acme/")
    assert [e.message for e in posted] == [
        f"Deprovisioning started; archiving to {uri}",
        f"Step 1/{STEPS}: routing removed (ListenerRule)",
    ]
    assert written[0]["phase"] == "PendingDeprovision"
    assert written[0]["archive"] == {"location": uri}
    assert written[-1]["phase"] == "Deprovisioned"
    assert written[-1]["archive"] == {"location": uri, "database": f"{uri}database.sql.gz"}
    (done,) = result.events
    assert done.reason == "Deprovisioned" and done.message.startswith("Archived and removed in")
    assert done.message.endswith(f"; database {uri}database.sql.gz")
    assert result.requeue is None and app.streak("u1") == 0, "forgotten"


def test_a_failed_attempt_retries_and_resumes_the_same_archive(
    below: Below, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = Steps(fail=TransientError("AwsRetrying", "AWS answered Throttling"))
    monkeypatch.setattr(usecases, "Deprovisioner", steps)
    result, _, written = _delete(_app(), _env({"phase": "Active"}))
    assert isinstance(result.requeue, Retry)
    assert result.requeue.message == "AWS answered Throttling"
    assert 1 <= result.requeue.delay <= 10
    assert result.events == (engine.Event("Warning", "AwsRetrying", "AWS answered Throttling"),)
    condition = st.find(written[-1]["conditions"], "Deprovision")
    assert condition is not None and condition["reason"] == "AwsRetrying"
    assert "nothing holding data was removed" in condition["message"]

    status = {"phase": "PendingDeprovision", "archive": {"location": steps.archives[0].uri()}}
    _delete(_app(), _env(status))
    assert steps.archives[1].prefix == steps.archives[0].prefix, "the same archive again"


def test_deprovisioning_is_timed_from_the_deletion_request_across_attempts(
    below: Below, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(usecases, "Deprovisioner", Steps())
    asked = (datetime.now(UTC) - timedelta(minutes=11)).strftime("%Y-%m-%dT%H:%M:%SZ")
    misses = _sample("wpenv_sla_misses_total", operation="deprovision")
    env = replace(_env({"phase": "Active"}), deleting=True, deletion_requested=asked)
    result, _, _ = _delete(_app(), env)
    (done,) = result.events
    seconds = float(done.message.split(" in ")[1].split("s;")[0])
    assert 660 <= seconds < 700
    assert _sample("wpenv_sla_misses_total", operation="deprovision") == misses + 1


def test_env_copies_what_the_use_cases_read_from_the_event() -> None:
    meta = {"namespace": "ns", "name": "acme", "uid": "u1", "generation": 3,
            "annotations": {"a": "b"}, "creationTimestamp": "2026-11-27T10:00:00Z",
            "deletionTimestamp": "2026-11-27T11:00:00Z"}
    env = Env.of(meta, {"tenantId": "acme"}, {"phase": "Active"}, {})
    assert (env.key, env.uid, env.generation, env.tenant) == (("ns", "acme"), "u1", 3, "acme")
    assert env.deleting and env.created == "2026-11-27T10:00:00Z"
    assert env.deletion_requested == "2026-11-27T11:00:00Z"
    assert env.annotations == {"a": "b"} and env.status == {"phase": "Active"}
    assert not env.eager, "a timer's or a create's pass loads listings as it needs"
    changed = Env.of(meta, {"tenantId": "acme"}, {}, {"reason": kopf.Reason.UPDATE})
    assert changed.eager, "a spec change: a person waits for it"
    assert usecases._context(_app(), changed).eager


# --- stale events and the Kubernetes API failing (real client errors: tests/unit/kube_wire)


@pytest.mark.parametrize("now", [None, {"metadata": {"uid": "another"}}],
                         ids=["gone", "replaced"])
def test_a_stale_event_of_an_object_no_longer_there_does_nothing(
    below: Below, now: Mapping[str, Any] | None
) -> None:
    below.now = {"object": now}
    app = _app()
    assert usecases.reconcile(app, _env(), NOWHERE) == Result()
    assert below.passes == [] and below.reads == 1
    assert app.slots.in_use == 0, "its slot goes to the next in line"


def test_an_object_being_deleted_is_left_to_the_finalizer(below: Below) -> None:
    below.now = {"object": {"metadata": {"uid": "u1", "deletionTimestamp": "2026-11-27T11:00:00Z"}}}
    app = _app()
    assert usecases.reconcile(app, _env(), NOWHERE) == Result()
    assert below.passes == [] and app.slots.in_use == 0
    deleting = replace(_env(), deleting=True)
    assert usecases.reconcile(app, deleting, NOWHERE) == Result()
    assert below.reads == 1, "the event says so already: no read"


def test_one_read_per_provisioning_pass_and_none_for_drift_or_an_idle_resume(
    below: Below
) -> None:
    below.outcomes.append(engine.Outcome(retry_after=3.0, conditions=[PROGRESSING]))
    usecases.reconcile(_app(), _env(), _ignore)
    assert below.reads == 1 and len(below.passes) == 1
    active = {"phase": "Active", "observedGeneration": 1,
              "conditions": [{"type": "Ready", "status": "True", "reason": "Active"}]}
    assert usecases.reconcile(_app(), _env(active), NOWHERE, resumed=True) == Result()
    below.outcomes.append(engine.Outcome(ready=True, conditions=[READY]))
    usecases.drift(_app(), _env(active))
    assert below.reads == 1 and len(below.passes) == 2


def test_an_object_deleted_during_the_pass_ends_it_quietly(below: Below) -> None:
    gone = st.Cond(st.READY, st.FALSE, "EnvironmentGone", "gone")
    below.outcomes.append(engine.Outcome(troubled=True, retry_after=1.0, conditions=[gone]))
    app = _app()
    assert usecases.reconcile(app, _env(), _ignore) == Result()
    assert app.slots.in_use == 0


def test_the_kubernetes_api_down_before_a_pass_retries_with_the_backoff(
    below: Below, monkeypatch: pytest.MonkeyPatch
) -> None:
    error = refused()

    def down(env: Env) -> None:
        raise error

    monkeypatch.setattr(usecases, "_current", down)
    result = usecases.reconcile(_app(), _env(), NOWHERE)
    assert isinstance(result.requeue, Retry) and 1 <= result.requeue.delay <= 10
    assert "Kubernetes API did not answer" in result.requeue.message
    assert below.passes == []


def test_a_gone_object_under_a_raised_client_error_ends_quietly(
    below: Below, monkeypatch: pytest.MonkeyPatch
) -> None:
    error = answered(404)

    def rolled_back(app: App, ctx: Any, *, attempt: int, may_roll_back: bool, **_: Any) -> Any:
        raise error  # roll_back's last record, outside the teardown's try

    monkeypatch.setattr(usecases, "_converge", rolled_back)
    assert usecases.reconcile(_app(), _env(), _ignore) == Result()


@pytest.mark.parametrize("fails", ["begin", "retry"])
def test_a_status_write_failing_in_deprovisioning_retries_with_the_backoff(
    below: Below, monkeypatch: pytest.MonkeyPatch, fails: str
) -> None:
    error = refused()
    steps = Steps(fail=TransientError("AwsRetrying", "AWS answered Throttling"))
    monkeypatch.setattr(usecases, "Deprovisioner", steps)
    writes: list[Mapping[str, Any]] = []

    def write(fields: Mapping[str, Any]) -> None:
        if fails == "begin" or writes:
            raise error
        writes.append(fields)

    result = usecases.delete(_app(), _env({"phase": "Active"}), retry=2, post=_ignore,
                             write=write)
    assert isinstance(result.requeue, Retry), "never raised out to kopf's 60 s"
    assert 1 <= result.requeue.delay <= 10
    expected = "KubernetesUnavailable" if fails == "begin" else "AwsRetrying"
    assert [e.reason for e in result.events] == [expected]
    assert bool(steps.archives) == (fails == "retry")
