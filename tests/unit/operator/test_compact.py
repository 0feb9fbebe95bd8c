"""The bodies kopf keeps lose managedFields and kubectl's copy of the manifest, nothing else."""

from __future__ import annotations

import asyncio
import copy
import inspect
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kopf._cogs.clients import watching
from kopf._core.reactor import queueing

from wpenv.operator import compact

KUBECTL = "kubectl.kubernetes.io/last-applied-configuration"


def _body() -> dict[str, Any]:
    return {
        "apiVersion": "bbws.io/v1alpha1",
        "kind": "WordPressEnvironment",
        "metadata": {
            "name": "acme", "namespace": "ns", "uid": "u1",
            "annotations": {KUBECTL: '{"spec": {}}', "bbws.io/last-handled-configuration": "{}"},
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
        },
        "spec": {"tenantId": "acme"},
        "status": {"phase": "Active", "resources": {"serviceArn": "arn:x"}},
    }


def test_compact_drops_only_what_no_handler_reads() -> None:
    body = _body()
    expected = copy.deepcopy(body)
    del expected["metadata"]["managedFields"]
    del expected["metadata"]["annotations"][KUBECTL]
    assert compact.compact(body) == expected


def test_repeated_keys_and_short_strings_are_kept_once() -> None:
    one, two = (compact.compact(json.loads(json.dumps(_body()))) for _ in range(2))
    key_one = next(k for k in one["status"] if k == "resources")
    key_two = next(k for k in two["status"] if k == "resources")
    assert key_one is key_two
    assert one["status"]["phase"] is two["status"]["phase"]
    arn = "arn:aws:ecs:us-east-1:123456789012:service/wpenv/acme-" + "0" * 20
    assert compact.shared(arn) is not compact.shared("".join(arn))  # one of a kind: as is


def test_compact_leaves_other_values_alone() -> None:
    assert compact.compact(None) is None
    assert compact.compact({"metadata": {"name": "x"}}) == {"metadata": {"name": "x"}}


def test_the_wrapped_stream_compacts_events_and_passes_bookmarks() -> None:
    async def stream(**_: Any) -> AsyncIterator[Any]:
        yield watching.Bookmark.LISTED
        yield {"type": "ADDED", "object": _body()}

    async def collect() -> list[Any]:
        return [event async for event in compact.compacting(stream)(namespace=None)]

    bookmark, event = asyncio.run(collect())
    assert bookmark is watching.Bookmark.LISTED
    assert "managedFields" not in event["object"]["metadata"]
    assert event["object"]["spec"] == {"tenantId": "acme"}


def test_install_wraps_the_stream_kopf_watches_with_once(monkeypatch: pytest.MonkeyPatch) -> None:
    original = watching.infinite_watch
    monkeypatch.setattr(watching, "infinite_watch", original)
    compact.install()
    compact.install()
    assert watching.infinite_watch is not original
    assert watching.infinite_watch.__wrapped__ is original  # type: ignore[attr-defined]
    # kopf's watcher looks the function up at call time: the wrapper is what it runs.
    assert queueing.watching is watching  # type: ignore[attr-defined]
    assert "watching.infinite_watch(" in inspect.getsource(queueing.watcher)
