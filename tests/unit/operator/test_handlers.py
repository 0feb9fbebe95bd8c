"""The one helper that turns a use case's Result into kopf calls."""

from __future__ import annotations

from typing import Any

import kopf
import pytest

from wpenv import engine
from wpenv.operator import handlers
from wpenv.operator.result import GiveUp, Result, Retry


@pytest.fixture
def posted(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    monkeypatch.setattr(kopf, "event", lambda body, **kw: events.append({"body": body, **kw}))
    return events


def test_apply_patches_the_status_posts_in_order_then_requeues(
    posted: list[dict[str, Any]],
) -> None:
    patch = kopf.Patch()
    body: Any = {"metadata": {"name": "acme"}}
    events = (engine.Event("Normal", "Created", "Service created"),
              engine.Event("Warning", "RolledBack", "x:2 failed"))
    result = Result(status={"phase": "Active"}, events=events, requeue=Retry("Converging", 3.0))
    with pytest.raises(kopf.TemporaryError) as raised:
        handlers._apply(body, patch, result)
    assert raised.value.delay == 3.0 and str(raised.value) == "Converging"
    assert dict(patch) == {"status": {"phase": "Active"}}
    assert [(e["type"], e["reason"], e["message"]) for e in posted] == [
        ("Normal", "Created", "Service created"), ("Warning", "RolledBack", "x:2 failed")
    ]
    assert all(e["body"] is body for e in posted)


def test_apply_gives_up_or_does_nothing_at_all(posted: list[dict[str, Any]]) -> None:
    patch, body = kopf.Patch(), kopf.Body({})
    with pytest.raises(kopf.PermanentError, match="boom"):
        handlers._apply(body, patch, Result(requeue=GiveUp("boom")))
    handlers._apply(body, patch, Result())
    assert not patch and not posted, "an idle pass makes no write and posts nothing"


def test_the_routine_requeues_are_where_the_entry_point_reads_them() -> None:
    assert handlers.ROUTINE_REQUEUES == (
        "Converging", "Queued for a provisioning slot", "Applying the deferred suspend"
    )
