"""The handlers' decisions: phases, the Suspended condition, tenant ownership."""

from __future__ import annotations

from wpenv import engine
from wpenv.api.models import Phase
from wpenv.operator import decisions
from wpenv.reconcilers.base import PermanentError


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
