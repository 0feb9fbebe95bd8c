"""What the handlers report about themselves: reconcile metrics, the inventory, log context.

- `reconciler(controller)` wraps a kopf handler: the controller-runtime families count
  and time each call, by how it ended, and every line logged inside it names the
  environment (`logs.about`).
- `seen` turns a watch event's object into the inventory's record, from which the
  environments-by-phase, work-queue and provision-age gauges are counted at each scrape.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import kopf

from wpenv import metrics
from wpenv.api.models import Phase
from wpenv.operator import logs
from wpenv.operator.decisions import moment

F = TypeVar("F", bound=Callable[..., Any])
# Phases in which the operator still has work to do whatever the spec says.
BUSY = (Phase.PENDING_PROVISIONING.value, Phase.PROVISIONING.value,
        Phase.PENDING_DEPROVISION.value)
PROVISIONING = (Phase.PENDING_PROVISIONING.value, Phase.PROVISIONING.value)


def outcome_of(exc: BaseException | None, routine: tuple[str, ...]) -> str:
    """controller-runtime's result label for a handler call that raised `exc` (or not)."""
    if exc is None:
        return "success"
    if isinstance(exc, kopf.TemporaryError) and str(exc) in routine:
        return "requeue_after"  # how a pass waits for AWS or a slot, not a failure
    return "error"


@contextmanager
def _about(kwargs: Mapping[str, Any]) -> Iterator[None]:
    meta, spec = kwargs.get("meta") or {}, kwargs.get("spec") or {}
    with logs.about(str(meta.get("namespace") or ""), str(meta.get("name") or ""),
                    str(spec.get("tenantId") or "")):
        yield


def reconciler(controller: str, routine: tuple[str, ...]) -> Callable[[F], F]:
    """Count, time and label the log lines of each call of a synchronous kopf handler."""

    def wrap(handler: F) -> F:
        @functools.wraps(handler)
        def observed(**kwargs: Any) -> Any:
            started = time.monotonic()
            failure: BaseException | None = None
            try:
                with _about(kwargs):
                    return handler(**kwargs)
            except BaseException as exc:
                failure = exc
                raise
            finally:
                result = outcome_of(failure, routine)
                metrics.RECONCILES.labels(controller, result).inc()
                if result == "error":
                    metrics.RECONCILE_ERRORS.labels(controller).inc()
                metrics.RECONCILE_SECONDS.labels(controller).observe(time.monotonic() - started)

        return observed  # type: ignore[return-value]

    return wrap


def about_environment(handler: F) -> F:
    """Label the log lines of each call of an async kopf handler with its environment."""

    @functools.wraps(handler)
    async def labelled(**kwargs: Any) -> Any:
        with _about(kwargs):
            return await handler(**kwargs)

    return labelled  # type: ignore[return-value]


def seen(body: Mapping[str, Any]) -> metrics.Seen:
    """The inventory's record of one environment, from the object a watch event carries."""
    meta = body.get("metadata") or {}
    spec, status = body.get("spec") or {}, body.get("status") or {}
    phase = str(status.get("phase") or metrics.NO_PHASE)
    behind = status.get("observedGeneration") != meta.get("generation")
    started = moment((status.get("provisioning") or {}).get("startedAt"))
    return metrics.Seen(
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        tenant=str(spec.get("tenantId") or ""),
        phase=phase,
        pending=bool(meta.get("deletionTimestamp")) or behind or phase in BUSY,
        provision_started=started.timestamp() if started and phase in PROVISIONING else None,
    )


def watched(event_type: str | None, body: Mapping[str, Any]) -> str | None:
    """Keep the inventory in step with one watch event; the uid of a deleted object."""
    uid = str((body.get("metadata") or {}).get("uid") or "")
    if not uid:
        return None
    if event_type == "DELETED":
        metrics.INVENTORY.gone(uid)
        return uid
    metrics.INVENTORY.saw(uid, seen(body))
    return None
