"""What the operator keeps per environment between passes."""

from __future__ import annotations

from wpenv import engine, leases
from wpenv.operator.app import App, provision_slots
from wpenv.operator.throttle import ProvisionSlots
from wpenv.settings import Settings


def _app() -> App:
    settings = Settings()
    return App(settings=settings, clients=None, slots=ProvisionSlots(2),  # type: ignore[arg-type]
               resources=[])


def test_backoff_counts_troubled_passes_not_routine_polls() -> None:
    app = _app()
    polling = engine.Outcome(retry_after=engine.POLL_SECONDS)
    troubled = engine.Outcome(retry_after=5, troubled=True)
    for _ in range(30):  # a long rollout: the exponent stays at zero
        app.streak("u", polling)
    assert app.streak("u") == 0
    app.streak("u", troubled)
    app.streak("u", troubled)
    assert app.streak("u") == 2
    app.streak("u", engine.Outcome(ready=True))
    assert app.streak("u") == 0


def test_waits_count_passes_that_only_waited_and_a_change_or_trouble_resets_them() -> None:
    app = _app()
    for _ in range(3):
        app.waited("u", engine.Outcome(retry_after=engine.POLL_SECONDS))
    assert app.waited("u") == 3
    app.waited("u", engine.Outcome(acted=True))
    assert app.waited("u") == 0, "a pass that changed something: the next look comes soon"
    app.waited("u", engine.Outcome())
    app.waited("u", engine.Outcome(troubled=True))
    assert app.waited("u") == 0, "trouble has its own backoff (streak)"


def test_forget_drops_everything_kept_for_an_environment() -> None:
    app = _app()
    app.lock_for("u")
    app.streak("u", engine.Outcome(troubled=True))
    app.waited("u", engine.Outcome())
    assert app.slots.acquire("u")
    app.forget("u")
    assert "u" not in app.locks and app.streak("u") == 0 and app.slots.in_use == 0
    assert app.waited("u") == 0


def test_local_coordination_keeps_the_slots_in_memory_and_makes_no_call() -> None:
    slots = provision_slots(Settings(coordination="local", max_concurrent_provisions=3))
    assert type(slots) is ProvisionSlots and slots.limit == 3
    assert isinstance(leases.current(), leases.Local)
    with leases.current().exclusive("anything"):
        assert leases.current().reservations("placement") == []
