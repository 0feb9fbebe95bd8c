"""What a use case asks its handler to do: a status patch, Events and a requeue.

The use cases (`usecases`) return a Result instead of calling kopf, so they can be tested
without an operator; `handlers._apply` is the one place that turns it into kopf calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from wpenv.engine import Event


@dataclass(frozen=True)
class Retry:
    """Come back after `delay` seconds (kopf.TemporaryError): a wait or transient trouble."""

    message: str
    delay: float


@dataclass(frozen=True)
class GiveUp:
    """Nothing more this generation can do (kopf.PermanentError): a person must act."""

    message: str


# None: done for now (the next event, timer tick or spec change comes back).
Requeue: TypeAlias = Retry | GiveUp | None


@dataclass(frozen=True)
class Result:
    """One handler call's verdict: merge `status`, post `events` in order, then requeue."""

    status: Mapping[str, Any] = field(default_factory=dict)
    events: tuple[Event, ...] = ()
    requeue: Requeue = None
