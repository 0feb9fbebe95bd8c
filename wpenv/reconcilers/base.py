"""What every resource kind declares, and the shared work its base class does once.

Modelled on Crossplane's managed-resource reconciler: `observe` never changes anything and
answers "does it exist, is it up to date"; `create` tolerates "already exists"; `delete`
tolerates "already gone". A kind never decides policy (order, retries, rollback, archiving):
the engine does, reading the declarations below from `wpenv.reconcilers.registry`.

A kind declares, as class attributes:
- `kind`, `group`: its name in Events and the condition type it reports under;
- `ids`: the status.resources keys it records, the first being the one it is found by;
- `gone`: the exact AWS (or MySQL) error codes that mean "it is not there" — never a
  substring match, so a `TargetGroupNotFound` raised while deleting a rule is not "rule gone";
- `needs`: the kinds that must come before it in the creation order (checked by the registry);
- `archive`: the before-delete hook (`users`, `database`, `files`) that must succeed before
  it may be deleted, for a kind that holds the tenant's data;
- `retainable`: whether deletionPolicy Retain tags it (the kinds that carry tags);
- `goes_with`: the kind whose delete removes this one too, when its own delete is nothing
  (the Cognito groups go with their pool, after the pool's archive hook read the members);
- `in_aws`: False for a decision the status alone records (the load balancer placement),
  which a lost status cannot find again until a later kind builds on it.

and implements, on what observe found (`Observation.found`), never looking it up again:
- `find_by_id` / `find_by_name`: the base's `find` tries the recorded id, then the name;
- `inspect`: the Observation of a found resource (compare with the spec);
- `create`, `update`, `delete` (`remove` is the part that needs no spec, which the orphan
  cleanup calls too); `tag` for Retain;
- `managed` / `refresh`: every instance the operator manages, for the orphan scan.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from botocore.exceptions import ClientError

from wpenv import aws, plan
from wpenv.api.models import WordPressEnvironmentSpec
from wpenv.plan import Names
from wpenv.reconcilers.observations import Observations, Settled, always_settled
from wpenv.settings import Settings

__all__ = [
    "MISSING",
    "Context",
    "Facts",
    "Found",
    "Observation",
    "Resource",
]


@dataclass(frozen=True)
class Facts:
    """What the status reports about the running service (never secrets)."""

    running: int = 0
    desired: int = 0
    healthy: int = 0
    # ECS's rolloutState of the primary deployment (IN_PROGRESS, COMPLETED, FAILED).
    rollout_state: str = ""
    serving: str = ""  # the task definition ARN that serves
    rolled_back_from: str = ""  # a revision the circuit breaker rolled back


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
    # What observe found (the described AWS object, or the kind's own record of it), so
    # create, update and delete act on it without looking it up again.
    found: Any = None
    # The service's counts and rollout, for the status; None for every other kind.
    facts: Facts | None = None


MISSING = Observation(exists=False, up_to_date=False, ready=False)

# What a kind may declare in its class statement (see Resource.__init_subclass__).
DECLARATIONS = (
    "group", "ids", "gone", "needs", "archive", "retainable", "goes_with", "in_aws"
)
# The archive steps a kind that holds data may name (the hooks in wpenv/archive/hooks.py).
ARCHIVE_STEPS = (None, "users", "database", "files")
BAD_DECLARATION = "{kind} declares {keys}, which a resource kind cannot declare"
BAD_ARCHIVE = "{kind} names the archive step {archive!r}, which does not exist"
# The methods that write for one environment: each marks the kind's observations changed.
WRITERS = ("create", "update", "delete", "tag")


def _marks_changed(method: Callable[..., Any]) -> Callable[..., Any]:
    """`method`, then (even when it fails half-way) the kind's cached observations dropped."""

    @functools.wraps(method)
    def writer(self: Resource, ctx: Context, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, ctx, *args, **kwargs)
        finally:
            ctx.observations.changed(ctx.owner(self.kind))

    return writer


@dataclass
class Context:
    """Everything a resource needs to act on one environment; built per pass."""

    namespace: str
    name: str
    spec: WordPressEnvironmentSpec
    names: Names
    tags: dict[str, str]
    settings: Settings
    clients: Any  # wpenv.aws.Clients
    ids: dict[str, Any]  # status.resources as last recorded, updated as we go
    record: Callable[[Mapping[str, Any]], None] = lambda _ids: None
    # The operator's shared cache (wpenv.reconcilers.observations); off unless given.
    observations: Observations = field(default_factory=Observations)
    # What a kind's observe read that its create, right after in the same step, may use
    # instead of reading it again (popped there; per pass, as the Context is).
    handed: dict[str, Any] = field(default_factory=dict)
    # A person waits for this pass (a spec change): a listing the cache no longer holds
    # is not loaded first (at 1,000 tenants the cluster's services are 100 describes);
    # what a live one lacks is read directly, as with no cache.
    eager: bool = False

    def owner(self, kind: str) -> str:
        """Whose cached observations a write by `kind` for this environment invalidates."""
        return f"{kind}:{self.namespace}/{self.name}"

    def forget(self, keys: Iterable[str]) -> None:
        """Drop identifiers of a resource that was removed, in the status too."""
        gone = [key for key in keys if key in self.ids]
        for key in gone:
            self.ids.pop(key)
        if gone:
            self.record(dict.fromkeys(gone))

    def remember(self, ids: Mapping[str, Any]) -> None:
        """Keep new identifiers and record them (the engine writes a pass's at its end)."""
        fresh = {k: v for k, v in ids.items() if self.ids.get(k) != v}
        if fresh:
            self.ids.update(fresh)
            self.record(fresh)

    @property
    def tag_list(self) -> list[dict[str, str]]:
        """This environment's tags in the Key/Value list form."""
        return plan.tag_list(self.tags)


@dataclass(frozen=True)
class Found:
    """One instance a kind's `managed` listing found: what `remove` takes, and its tags."""

    id: str  # ARN, AWS id or name, as the report shows it
    found: Any  # what `remove` and `refresh` take (the same shape observe finds)
    tags: Mapping[str, str] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)  # for the report; no secret


class Resource:
    """The base of every kind: declarations, find-by-id-then-name, tolerant deletes."""

    kind: ClassVar[str]
    group: ClassVar[str]
    ids: ClassVar[tuple[str, ...]] = ()
    gone: ClassVar[frozenset[str]] = frozenset()
    needs: ClassVar[tuple[str, ...]] = ()
    archive: ClassVar[str | None] = None
    retainable: ClassVar[bool] = False
    goes_with: ClassVar[str | None] = None
    in_aws: ClassVar[bool] = True

    def __init_subclass__(cls, **declared: Any) -> None:
        """A kind declares itself in its class statement, checked here once.

        `class LogGroup(Resource, group="Compute", ids=("logGroupArn",), gone={...})`: the
        kind's name is its class name, and an unknown key, an archive step that does not
        exist or a retainable kind that cannot tag fails at import, not in a teardown.
        """
        super().__init_subclass__()
        unknown = set(declared) - set(DECLARATIONS)
        if unknown:
            raise TypeError(BAD_DECLARATION.format(kind=cls.__name__, keys=sorted(unknown)))
        for key, value in declared.items():
            setattr(cls, key, frozenset(value) if key == "gone" else value)
        cls.kind = cls.__name__
        for name in WRITERS:  # its own (the base's are wrapped below the class)
            if name in cls.__dict__:
                setattr(cls, name, _marks_changed(cls.__dict__[name]))
        if cls.archive not in ARCHIVE_STEPS:
            raise TypeError(BAD_ARCHIVE.format(kind=cls.kind, archive=cls.archive))

    # -- the spec --------------------------------------------------------------------
    def wanted(self, ctx: Context) -> bool:
        """Whether the spec wants it now (the rule while suspended, Cognito without identity)."""
        return True

    # -- finding ---------------------------------------------------------------------
    def cached(
        self,
        ctx: Context,
        api: str,
        scope: str,
        key: str,
        *,
        bulk: Callable[[], Mapping[str, Any]] | None,
        direct: Callable[[], Any],
        settled: Settled = always_settled,
    ) -> Any:
        """`direct()`, or what the shared cache holds for it (see observations' rules)."""
        return ctx.observations.lookup(ctx.owner(self.kind), api, scope, key, bulk=bulk,
                                       direct=direct, settled=settled, eager=ctx.eager)

    def is_gone(self, exc: BaseException) -> bool:
        """Whether `exc` says the resource is not there, by this kind's exact codes."""
        return isinstance(exc, ClientError) and aws.error_code(exc) in self.gone

    def recorded(self, ctx: Context) -> str | None:
        """The identifier recorded in the status, if any."""
        value = ctx.ids.get(self.ids[0]) if self.ids else None
        return str(value) if value else None

    def find(self, ctx: Context) -> Any | None:
        """By recorded id, then by deterministic name or tag; None when neither finds it."""
        found = self.found_by_id(ctx)
        return found if found is not None else self.find_by_name(ctx)

    def found_by_id(self, ctx: Context) -> Any | None:
        """`find_by_id` of the recorded id, with this kind's "gone" codes meaning None."""
        recorded = self.recorded(ctx)
        if not recorded:
            return None
        try:
            return self.find_by_id(ctx, recorded)
        except ClientError as exc:
            if not self.is_gone(exc):
                raise
            return None

    def find_by_id(self, ctx: Context, recorded: str) -> Any | None:
        """The resource the status recorded, if it is still there (and still ours)."""
        return None

    def find_by_name(self, ctx: Context) -> Any | None:
        """The resource found by its deterministic name or tags, for a lost status."""
        return None

    def observe(self, ctx: Context) -> Observation:
        """Read-only: does it exist, is it as the spec wants, is it ready."""
        found = self.find(ctx)
        return MISSING if found is None else self.inspect(ctx, found)

    def inspect(self, ctx: Context, found: Any) -> Observation:
        """The Observation of a resource that exists (compares it with the spec)."""
        raise NotImplementedError

    # -- changing --------------------------------------------------------------------
    def create(self, ctx: Context, observed: Observation) -> None:
        """Create it; if it already exists (a pass we do not remember), adopt it."""
        raise NotImplementedError

    def update(self, ctx: Context, observed: Observation) -> None:
        """Bring the existing resource (`observed.found`) in line with the spec."""
        raise NotImplementedError

    def delete(self, ctx: Context, observed: Observation) -> None:
        """Remove what observe found; "already gone" is success."""
        if observed.found is not None:
            self.remove_tolerant(ctx.clients, ctx.settings, observed.found)

    def remove(self, clients: Any, settings: Settings, found: Any) -> None:
        """Delete `found` (and what only it uses); needs no spec, so orphans use it too."""
        raise NotImplementedError

    def remove_tolerant(self, clients: Any, settings: Settings, found: Any) -> None:
        """`remove`, with this kind's "already gone" codes meaning success."""
        try:
            self.remove(clients, settings, found)
        except ClientError as exc:
            if not self.is_gone(exc):
                raise

    def tag(self, ctx: Context, recorded: str, tags: Mapping[str, str]) -> None:
        """Add `tags` to the recorded resource (deletionPolicy Retain)."""
        raise NotImplementedError

    # -- the orphan scan -------------------------------------------------------------
    def managed(self, clients: Any, settings: Settings) -> Iterator[Found]:
        """Every instance that carries the operator's managed-by tag (or name)."""
        return iter(())

    def refresh(self, clients: Any, settings: Settings, item: Found) -> Found | None:
        """The instance as it is now, right before cleanup deletes it (None: gone)."""
        return None

    # -- helpers for the engine and tests ------------------------------------------------
    def ensure_absent(self, ctx: Context) -> bool:
        """Observe, then delete what exists and forget its ids; whether anything existed."""
        observed = self.observe(ctx)
        self.delete(ctx, observed)
        ctx.forget(self.ids)
        return observed.exists


for _name in WRITERS:  # the base's own writers, inherited by every kind that keeps them
    setattr(Resource, _name, _marks_changed(Resource.__dict__[_name]))
