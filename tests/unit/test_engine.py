"""The engine's policy with in-memory resources: order, idleness, rollback, backoff.

These fakes implement our own Resource interface (not boto3); the real resources are
exercised against the local platform in tests/integration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.unit.kube_wire import answered, refused
from wpenv import engine
from wpenv.errors import PermanentError, TransientError
from wpenv.reconcilers.base import Context, Facts, Observation, Resource
from wpenv.settings import Settings


@dataclass
class Journal:
    calls: list[str] = field(default_factory=list)


class FakeResource(Resource):
    """Exists once created; can be told to fail on create."""

    def __init__(self, kind: str, journal: Journal, fail: BaseException | None = None,
                 group: str = "Storage", needs: tuple[str, ...] = (),
                 archive: str | None = None) -> None:
        self.kind = kind  # type: ignore[misc]
        self.group = group  # type: ignore[misc]
        self.ids = (f"{kind}Id",)  # type: ignore[misc]
        self.needs = needs  # type: ignore[misc]
        self.archive = archive  # type: ignore[misc]
        self.journal = journal
        self.fail = fail
        self.exists = False
        self.stale = False

    def observe(self, ctx: Context) -> Observation:
        return Observation(exists=self.exists, up_to_date=not self.stale,
                           ids={f"{self.kind}Id": "x"} if self.exists else {})

    def create(self, ctx: Context, observed: Observation) -> None:
        self.journal.calls.append(f"create {self.kind}")
        if self.fail is not None:
            raise self.fail
        self.exists = True

    def update(self, ctx: Context, observed: Observation) -> None:
        self.journal.calls.append(f"update {self.kind}")
        self.stale = False

    def delete(self, ctx: Context, observed: Observation) -> None:
        self.journal.calls.append(f"delete {self.kind}")
        self.exists = False


def _ctx() -> Context:
    return engine.make_context("ns", "acme", {"tenantId": "acme"}, settings=Settings(),
                               clients=None)


def test_creates_in_order_then_an_idle_pass_writes_nothing() -> None:
    journal = Journal()
    resources = [FakeResource(k, journal) for k in ("a", "b", "c")]
    first = engine.converge(_ctx(), resources)
    assert first.ready
    assert journal.calls == ["create a", "create b", "create c"]
    journal.calls.clear()
    second = engine.converge(_ctx(), resources)
    assert second.ready
    assert journal.calls == []
    assert second.events == []


def test_stale_resource_is_updated_only() -> None:
    journal = Journal()
    resources = [FakeResource(k, journal) for k in ("a", "b")]
    engine.converge(_ctx(), resources)
    journal.calls.clear()
    resources[1].stale = True
    engine.converge(_ctx(), resources)
    assert journal.calls == ["update b"]


def test_permanent_failure_rolls_back_in_reverse_and_reports_failed() -> None:
    journal = Journal()
    resources = [FakeResource("a", journal), FakeResource("b", journal),
                 FakeResource("c", journal, fail=PermanentError("Bad", "no")),
                 FakeResource("d", journal)]
    recorded: list[dict[str, object]] = []
    ctx = _ctx()
    ctx.record = lambda ids: recorded.append(dict(ids))
    out = engine.converge(ctx, resources)
    assert out.failure is not None
    assert out.failure.reason == "Bad"
    assert journal.calls == ["create a", "create b", "create c", "delete b", "delete a"]
    assert not any(r.exists for r in resources)
    assert ctx.ids == {}
    assert recorded[-1]["securityGroupId"] is None  # status ids cleared after rollback
    ready = [c for c in out.conditions if c.type == "Ready"]
    assert ready[-1].status == "False"


def test_no_rollback_for_an_environment_that_was_active() -> None:
    journal = Journal()
    resources = [FakeResource("a", journal),
                 FakeResource("b", journal, fail=PermanentError("Bad", "no"))]
    out = engine.converge(_ctx(), resources, may_roll_back=False)
    assert out.failure is not None
    assert "delete a" not in journal.calls


def test_transient_error_stops_the_pass_and_asks_for_a_retry() -> None:
    journal = Journal()
    throttled = ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow"},
                             "ResponseMetadata": {"HTTPStatusCode": 400}}, "CreateThing")
    resources = [FakeResource("a", journal, fail=throttled), FakeResource("b", journal)]
    out = engine.converge(_ctx(), resources)
    assert out.failure is None
    assert out.retry_after is not None
    assert journal.calls == ["create a"]
    assert any(c.reason == "AwsRetrying" for c in out.conditions)


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (TransientError("X", "y"), TransientError),
        (ClientError({"Error": {"Code": "ValidationError", "Message": "bad"}}, "Op"),
         PermanentError),
        (ClientError({"Error": {"Code": "Whatever"},
                      "ResponseMetadata": {"HTTPStatusCode": 503}}, "Op"), TransientError),
        (RuntimeError("boom"), PermanentError),
    ],
)
def test_classify(exc: BaseException, kind: type) -> None:
    assert isinstance(engine.classify(exc), kind)


def test_backoff_grows_and_is_capped() -> None:
    settings = Settings(retry_base_seconds=1, retry_max_seconds=10)
    assert all(1 <= engine.backoff(0, settings) <= 1 for _ in range(5))
    assert all(engine.backoff(20, settings) <= 10 for _ in range(50))
    assert max(engine.backoff(5, settings) for _ in range(200)) > 2


class Optional(FakeResource):
    """A resource the spec can switch off (like the listener rule while suspended)."""

    def __init__(self, kind: str, journal: Journal) -> None:
        super().__init__(kind, journal, group="Routing")
        self.on = True

    def wanted(self, ctx: Context) -> bool:
        return self.on


def test_unwanted_resources_are_removed_after_the_others_newest_first() -> None:
    journal = Journal()
    a, b, c = FakeResource("a", journal), Optional("b", journal), Optional("c", journal)
    ctx = _ctx()
    engine.converge(ctx, [a, b, c])
    journal.calls.clear()
    b.on = c.on = False
    a.stale = True
    outcome = engine.converge(ctx, [a, b, c])
    assert journal.calls == ["update a", "delete c", "delete b"]
    assert outcome.ready
    assert [e.reason for e in outcome.events] == ["Updated", "Removed", "Removed"]
    routing = next(c for c in outcome.conditions if c.type == "Routing")
    assert routing.status == "True" and "off as the spec asks" in routing.message
    assert "bId" not in ctx.ids and "cId" not in ctx.ids
    journal.calls.clear()
    again = engine.converge(ctx, [a, b, c])
    assert journal.calls == [] and again.events == [], "an absent unwanted one is left alone"


def test_rollout_condition_follows_the_service_facts() -> None:
    arn = "arn:aws:ecs:us-east-1:123:task-definition/wpenv-acme:{}"
    assert engine.rollout_condition(None) is None
    assert engine.rollout_condition(Facts()) is None
    done = engine.rollout_condition(Facts(rollout_state="COMPLETED", serving=arn.format(3)))
    assert done is not None and (done.status, done.reason) == ("True", "Completed")
    assert "wpenv-acme:3" in done.message
    moving = engine.rollout_condition(Facts(rollout_state="IN_PROGRESS", serving=arn.format(4),
                                            running=1, desired=2))
    assert moving is not None and moving.reason == "InProgress" and "1/2" in moving.message
    back = engine.rollout_condition(Facts(rollout_state="COMPLETED", serving=arn.format(3),
                                          rolled_back_from=arn.format(5)))
    assert back is not None and (back.status, back.reason) == ("False", "RolledBack")
    assert "wpenv-acme:5 failed" in back.message and "wpenv-acme:3 keeps serving" in back.message


def test_the_dependency_check_waits_for_a_missing_need() -> None:
    journal = Journal()
    a = FakeResource("a", journal)
    b = FakeResource("b", journal, needs=("a",))
    seen = {"a": Observation(exists=False)}
    with pytest.raises(TransientError, match="b waits for a"):
        engine.step(_ctx(), b, seen, engine.Outcome())
    assert journal.calls == []
    assert not a.exists


def test_teardown_runs_the_archive_hook_before_the_delete_and_stops_when_it_fails() -> None:
    journal = Journal()
    data = FakeResource("data", journal, archive="database")
    other = FakeResource("other", journal)
    ctx = _ctx()
    engine.converge(ctx, [data, other], hooks={"database": lambda *_: None})
    journal.calls.clear()

    def archived(c: Context, r: Resource, o: Observation) -> None:
        journal.calls.append(f"archive {r.kind}")

    def broken(c: Context, r: Resource, o: Observation) -> None:
        raise TransientError("ArchiveCorrupt", "the dump does not restore")

    with pytest.raises(engine.TeardownError) as failed:
        engine.tear_down(ctx, [data, other], {"database": broken})
    assert failed.value.resource is data
    assert journal.calls == ["delete other"] and data.exists, "nothing holding data goes"
    journal.calls.clear()
    removed = engine.tear_down(ctx, [data, other], {"database": archived})
    assert journal.calls == ["archive data", "delete data"], "what is gone is not deleted again"
    assert removed == ["data"]
    with pytest.raises(engine.TeardownError, match="no 'database' archive step"):
        engine.tear_down(ctx, [FakeResource("more", journal, archive="database")], {})


# --- the Kubernetes API failing under a pass (real client errors: tests/unit/kube_wire.py) --


def test_the_kubernetes_api_not_answering_is_transient() -> None:
    for error in (refused(), answered(503)):
        classified = engine.classify(error)
        assert isinstance(classified, TransientError)
        assert classified.reason == "KubernetesUnavailable"
    gone = engine.classify(answered(404))
    assert isinstance(gone, TransientError) and gone.reason == "EnvironmentGone"


def test_a_status_write_failing_mid_first_provision_retries_and_rolls_nothing_back() -> None:
    journal = Journal()
    resources = [FakeResource(k, journal) for k in ("a", "b", "c")]
    ctx = _ctx()
    error = refused()

    def record(ids: Mapping[str, Any]) -> None:
        if "bId" in ids:
            raise error

    ctx.record = record
    out = engine.converge(ctx, resources, attempt=0, may_roll_back=True)
    assert out.failure is None and out.troubled and out.retry_after is not None
    assert not out.ready
    assert journal.calls == ["create a", "create b", "create c"], "no rollback"
    ready = [c for c in out.conditions if c.type == "Ready"]
    assert [c.reason for c in ready] == ["KubernetesUnavailable"]
    assert ctx.record is record, "the pass's write-behind is gone with the pass"


def test_a_pass_records_its_ids_in_one_write_at_its_end() -> None:
    journal = Journal()
    resources = [FakeResource(k, journal) for k in ("a", "b", "c")]
    ctx = _ctx()
    writes: list[dict[str, Any]] = []

    def record(ids: Mapping[str, Any]) -> None:
        writes.append(dict(ids))
        assert journal.calls == ["create a", "create b", "create c"], "only at the end"

    ctx.record = record
    assert engine.converge(ctx, resources).ready
    assert len(writes) == 1 and {"aId", "bId", "cId"} <= set(writes[0])
    writes.clear()
    assert engine.converge(ctx, resources).ready
    assert writes == [], "nothing new: nothing written"
class Rolling(FakeResource):
    """Exists once created, but not ready (a rollout under way)."""

    def observe(self, ctx: Context) -> Observation:
        seen = super().observe(ctx)
        seen.ready = False
        return seen


def test_the_first_look_after_a_create_comes_soonest_and_each_wait_doubles_the_next() -> None:
    journal = Journal()
    resources = [FakeResource("a", journal), Rolling("b", journal)]
    ctx = _ctx()
    first = engine.converge(ctx, resources, waited=5)
    assert first.acted and first.retry_after == engine.FIRST_POLL_SECONDS < engine.POLL_SECONDS
    delays = [engine.converge(ctx, resources, waited=n).retry_after for n in range(7)]
    assert delays == [0.1, 0.2, 0.4, 0.8, 1.6, engine.POLL_SECONDS,
                      engine.POLL_SECONDS], "nothing changed: each look waits twice as long"
