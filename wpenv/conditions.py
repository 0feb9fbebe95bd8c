"""Kubernetes-style conditions and the HLD phase, computed without I/O.

Conditions follow metav1.Condition: a list keyed by type, each with status, reason,
message, observedGeneration and a lastTransitionTime that moves only when the status flips
(so `kubectl wait` and Argo CD see stable timestamps). Handlers build a status *patch* with
these helpers; the patch names only fields the operator owns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from wpenv.api.models import Phase

READY = "Ready"
TRUE, FALSE, UNKNOWN = "True", "False", "Unknown"


def now_rfc3339() -> str:
    """The current time as Kubernetes writes it (second precision, Z suffix)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Cond:
    """One condition as the operator wants it to read now."""

    type: str
    status: str
    reason: str
    message: str = ""


def merge_conditions(
    current: Iterable[Mapping[str, Any]],
    wanted: Iterable[Cond],
    generation: int | None,
    now: str | None = None,
) -> list[dict[str, Any]]:
    """Apply `wanted` onto `current`: same order, new types appended, others kept.

    lastTransitionTime is carried over unless the status value changed.
    """
    stamp = now or now_rfc3339()
    merged: dict[str, dict[str, Any]] = {str(c["type"]): dict(c) for c in current}
    for cond in wanted:
        previous = merged.get(cond.type)
        flipped = previous is None or previous.get("status") != cond.status
        merged[cond.type] = {
            "type": cond.type,
            "status": cond.status,
            "reason": cond.reason,
            "message": cond.message,
            "observedGeneration": generation,
            "lastTransitionTime": stamp
            if flipped or not previous
            else previous.get("lastTransitionTime", stamp),
        }
    return list(merged.values())


def find(conditions: Iterable[Mapping[str, Any]], type_: str) -> Mapping[str, Any] | None:
    """The condition of that type, if any."""
    return next((c for c in conditions if c.get("type") == type_), None)


def status_patch(
    status: Mapping[str, Any],
    generation: int | None,
    *,
    phase: Phase | None = None,
    conditions: Iterable[Cond] = (),
    now: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """The smallest status patch that records phase, conditions and extra fields.

    Returns {} when nothing would change, so an idle pass makes no Kubernetes write.
    """
    patch: dict[str, Any] = {}
    if phase is not None and status.get("phase") != phase.value:
        patch["phase"] = phase.value
    if generation is not None and status.get("observedGeneration") != generation:
        patch["observedGeneration"] = generation
    wanted = list(conditions)
    if wanted:
        current = list(status.get("conditions") or [])
        merged = merge_conditions(current, wanted, generation, now)
        if _comparable(merged) != _comparable(current):
            patch["conditions"] = merged
    for key, value in fields.items():
        if status.get(key) != value:
            patch[key] = value
    return patch


def _comparable(conditions: Iterable[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """Conditions without their timestamps, for deciding whether to write."""
    return [
        (c.get("type"), c.get("status"), c.get("reason"), c.get("message"),
         c.get("observedGeneration"))
        for c in conditions
    ]
