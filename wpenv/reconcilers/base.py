"""The one interface every managed resource implements, and what it is given.

Modelled on Crossplane's managed-resource reconciler: `observe` never changes anything and
answers "does it exist, is it up to date"; `create` tolerates "already exists"; `delete`
tolerates "already gone". A resource module never decides policy (order, retries,
rollback): the engine does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from wpenv.api.models import WordPressEnvironmentSpec
from wpenv.errors import PermanentError, TransientError
from wpenv.plan import Names
from wpenv.settings import Settings

__all__ = ["PermanentError", "TransientError"]


@dataclass
class Observation:
    """What one resource looks like in AWS (or MySQL) right now."""

    exists: bool
    up_to_date: bool = True
    # Identifiers to record in status.resources (camelCase keys of ResourceIds).
    ids: dict[str, Any] = field(default_factory=dict)
    # False while the resource exists but is not yet serving (e.g. a rollout in progress).
    ready: bool = True
    detail: str = ""
    # Facts other resources or the status need (e.g. running counts); never secrets.
    facts: dict[str, Any] = field(default_factory=dict)


MISSING = Observation(exists=False, up_to_date=False, ready=False)


def tag_diff(wanted: Mapping[str, str], described: Mapping[str, Any]) -> dict[str, str]:
    """Tags in `wanted` that a described resource (AWS `Tags` Key/Value list) lacks or differs on.

    One rule for every resource, so a hand-removed tag is repaired the same way everywhere.
    """
    have = {t["Key"]: t.get("Value") for t in described.get("Tags") or []}
    return {k: v for k, v in wanted.items() if have.get(k) != v}


@dataclass
class Context:
    """Everything a resource needs to act on one environment; built per pass."""

    namespace: str
    name: str
    spec: WordPressEnvironmentSpec
    names: Names
    tags: dict[str, str]
    settings: Settings
    clients: Any  # wpenv.aws.Clients; Any keeps reconcilers free of an import cycle
    ids: dict[str, Any]  # status.resources as last recorded, updated as we go
    record: Callable[[Mapping[str, Any]], None] = lambda _ids: None
    # Where a delete exports data before it is lost (deprovisioning sets one prefix for the
    # whole archive); None lets each export pick a fresh timestamped prefix of its own.
    archive_key_prefix: str | None = None
    # S3 URIs of what deletes exported during this pass, for the caller's Event and status.
    exported: list[str] = field(default_factory=list)

    def forget(self, keys: Iterable[str]) -> None:
        """Drop identifiers of a resource that was removed, in the status too."""
        gone = [key for key in keys if key in self.ids]
        for key in gone:
            self.ids.pop(key)
        if gone:
            self.record(dict.fromkeys(gone))

    def remember(self, ids: Mapping[str, Any]) -> None:
        """Keep new identifiers and write them to the status at once (crash safety)."""
        fresh = {k: v for k, v in ids.items() if self.ids.get(k) != v}
        if fresh:
            self.ids.update(fresh)
            self.record(fresh)

    @property
    def tag_list(self) -> list[dict[str, str]]:
        """Tags in the Key/Value list form most AWS APIs take."""
        return [{"Key": k, "Value": v} for k, v in self.tags.items()]


class Resource(Protocol):
    """One external resource; the engine calls these four and nothing else.

    A resource that the spec can switch off (the listener rule while suspended, the
    Cognito pieces without identity) also defines `wanted(ctx) -> bool`; see `is_wanted`.
    """

    kind: str  # short name used in Events, e.g. "AccessPoint"
    group: str  # condition type it reports under, e.g. "Storage"

    def observe(self, ctx: Context) -> Observation:
        """Read-only: does it exist, is it as the spec wants, is it ready."""
        ...

    def create(self, ctx: Context) -> None:
        """Create it; if it already exists, adopt it. Records ids via ctx.remember."""
        ...

    def update(self, ctx: Context, observed: Observation) -> None:
        """Bring an existing resource in line with the spec."""
        ...

    def delete(self, ctx: Context) -> None:
        """Remove it; "already gone" is success."""
        ...


def is_wanted(resource: Resource, ctx: Context) -> bool:
    """Whether the spec wants `resource` to exist; resources without `wanted` always are.

    Optional rather than part of the protocol: most resources exist for as long as the
    environment does, and a one-line `return True` in each would only be noise.
    """
    wanted: Callable[[Context], bool] | None = getattr(resource, "wanted", None)
    return True if wanted is None else bool(wanted(ctx))
