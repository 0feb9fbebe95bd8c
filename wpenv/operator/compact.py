"""What kopf keeps of each watched object: the object less what no handler reads.

kopf holds the last body of every object for the life of the object (its timers are
called with it) and parses every listing and watch event into plain dicts. Two parts of
an environment's body are bookkeeping for other clients, read by nobody here, and were
about half its size: `metadata.managedFields` (server-side apply's field owners: one entry
per manager, kubectl, kopf and the status writer, each a tree of every field it set) and
kubectl's `last-applied-configuration` annotation (a second copy of the manifest). kopf's
own diff ignores both (its essence drops them), so removing them from the event before
kopf sees it changes no decision: 39 KB of parsed body becomes 17 KB.

What is left is shared where it repeats: JSON parsing makes new strings for every key
of every object (the same two hundred keys in each environment) and for values such as
condition types, reasons and messages. Interned, each is kept once: 17 KB becomes about
10 KB. At 1,000 environments the two save some 30 MB.

There is no kopf setting for this: `install` wraps kopf's watch stream (one function of
its client), and tests/unit/operator/test_compact.py fails if a kopf upgrade moves it.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

from kopf._cogs.clients import watching

# Annotations other clients write for themselves.
FOREIGN_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)
_WRAPPED = "__wpenv_compact__"
# Values up to this long are shared (interned): names, phases, reasons, messages. Longer
# ones (the last-handled spec, ARNs with ids) are mostly one of a kind.
SHARED_LENGTH = 64


def shared(value: Any) -> Any:
    """`value` rebuilt with its keys, and its strings up to SHARED_LENGTH, interned."""
    if isinstance(value, dict):
        return {sys.intern(k) if isinstance(k, str) else k: shared(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shared(v) for v in value]
    if isinstance(value, str) and len(value) <= SHARED_LENGTH:
        return sys.intern(value)
    return value


def compact(obj: Any) -> Any:
    """The object without managedFields and foreign annotations, its strings shared."""
    if not isinstance(obj, dict):
        return obj
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
        annotations = meta.get("annotations")
        if isinstance(annotations, dict):
            for key in FOREIGN_ANNOTATIONS:
                annotations.pop(key, None)
    return shared(obj)


def compacting(stream: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
    """kopf's `infinite_watch`, each event's object compacted before kopf takes it."""

    @functools.wraps(stream)
    async def compacted(**kwargs: Any) -> AsyncIterator[Any]:
        async for event in stream(**kwargs):
            if isinstance(event, dict) and "object" in event:
                event["object"] = compact(event["object"])
            yield event

    setattr(compacted, _WRAPPED, True)
    return compacted


def install() -> None:
    """Wrap kopf's watch stream once per process (before its watchers start)."""
    if not getattr(watching.infinite_watch, _WRAPPED, False):
        watching.infinite_watch = compacting(watching.infinite_watch)
