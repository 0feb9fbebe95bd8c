"""The shared observation cache: one per operator process, read by every environment's observe.

An idle drift pass used to read each resource of each environment on its own (about 30
AWS reads an environment), so 1,000 environments meant some 30,000 reads an interval and
throttled APIs the whole account shares. Most of those APIs describe in bulk: one listing of
a scope (ECS services of the cluster, access points of the file system, the rules of one
listener, the account's roles, the tenants' secrets) answers every environment's observe.

What it holds, keyed by (API, scope):
- a *snapshot*: one bulk listing of the scope, `key -> what a kind's find returns`, loaded
  lazily by the first observe that needs it and served for `ttl` seconds (the setting
  WPENV_OBSERVATION_TTL_SECONDS, a bit less than the drift interval by default, so each
  interval loads each scope about once);
- *fresh* entries: one resource read on its own (a miss, a resource just written, a value
  the API cannot list), served for `ttl` seconds to the same environment;
- *kept* entries: what a kind may keep across intervals because something it reads anyway
  tells it nothing changed (the hosted domain while the pool still names it);
- *each* entries: per-key values that only a person changes once the resource exists (the
  tags a listener rule was created with), read for the keys not yet held, in one call,
  and served to everyone for `ttl` seconds (rule 4 bounds a hand-made change).

Consistency rules (what makes a stale cache harmless):
1. A snapshot or fresh entry never answers "it is not there": a key missing from a
   snapshot is read directly (one call), and only that answer may say it is missing. So a
   stale cache can never make a kind create a second resource.
2. Every write a kind makes for an environment marks that kind of that environment
   changed (`changed`, called by the Resource base after each create, update, delete and
   tag); a snapshot loaded before the mark, or a fresh entry read before it, is not served
   to it again: the observe right after a create or update reads directly and sees the
   new state. Kept entries of that kind and environment are dropped.
3. A value that is still moving (a rollout in progress, an access point being created) is
   served only while `settled` says it has settled; otherwise it is read directly, so
   polls during a provision see progress at once.
4. What changes outside the operator (a person edits or deletes a resource) is seen at the
   latest `ttl` seconds later: the drift check's own granularity. A write that then fails
   on a resource someone deleted meanwhile is a transient error, and the next pass reads
   directly (rule 2).
5. With `ttl` 0 (the default of a Context of its own, as tests and one-off tools build
   it) nothing is cached and every lookup is the kind's direct read.
6. A *directory* is the one exception to rule 1: an account-wide listing (Cognito's user
   pools) that this process keeps current with its own writes (`listed`, `unlisted`; an
   unknown outcome drops it, `relist`), so it may answer "not there". That is safe for
   what only this process creates: an environment's resources are made only by the one
   process handling it, and a directory is first loaded after this process started
   handling environments, so it shows whatever an earlier process made. Others' writes
   (another shard's pools, a person's) show within `ttl`; a count taken from it is a
   hint that the API's own refusal (a quota reached) backs up.

Secret values the snapshots hold stay in this process's memory for at most `ttl`, as they
do during a pass anyway; nothing here logs or shows a value (the repr shows only counts).
A failed bulk load raises, as the direct read would: the pass is retried.

What is held is held pickled, each value on its own, and unpickled on every read. An
answer botocore parsed is six to thirteen times its size on the wire as Python objects
(a described task definition 44 KB, a user pool 39 KB, a service 23 KB; pickled 7, 3 and
2 KB), and with 1,000 environments the cache held most of the operator's memory. A read
costs tens of microseconds, and each reader gets a copy of its own, so no pass can change
what another one reads. The directories (rule 6) are the exception: small summaries that
are read whole, often. Only this process's own pickles are ever unpickled.
"""

from __future__ import annotations

import pickle
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Observations", "always_settled"]

Loader = Callable[[], Mapping[str, Any]]
Direct = Callable[[], Any]
Settled = Callable[[Any], bool]
Batch = Callable[[list[str]], Mapping[str, Any]]
NEVER = float("-inf")


def always_settled(_value: Any) -> bool:
    """The default: a listed value is as good as a direct read (nothing in it moves)."""
    return True


class _Pickled(bytes):
    """A held value, pickled (told apart from a value that is bytes itself)."""

    __slots__ = ()


def _freeze(value: Any) -> Any:
    """`value` as it is held: pickled, unless it is a scalar or cannot be pickled."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    try:
        return _Pickled(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    except (pickle.PicklingError, TypeError, AttributeError):
        return value


def _thaw(held: Any) -> Any:
    """A held value as a reader gets it: its own copy."""
    if isinstance(held, _Pickled):
        return pickle.loads(held)  # noqa: S301  (only what `_freeze` pickled here)
    return held


class _Held(Mapping[str, Any]):
    """A listing's items, each held pickled and unpickled when it is read."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, Any]) -> None:
        self._items = {key: _freeze(value) for key, value in items.items()}

    def __getitem__(self, key: str) -> Any:
        return _thaw(self._items[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True)
class _Snapshot:
    started: float  # when the bulk load began: what it shows is at least this recent
    items: Mapping[str, Any]


class Observations:
    """Bulk listings and single reads shared by every environment (see the module docstring)."""

    def __init__(self, ttl: float = 0.0, clock: Callable[[], float] = time.monotonic) -> None:
        """`ttl` seconds a listing or read is served (0: no caching); `clock` for tests."""
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._loading: dict[tuple[str, str], threading.Lock] = {}
        self._snapshots: dict[tuple[str, str], _Snapshot] = {}
        self._written: dict[str, float] = {}
        self._fresh: dict[str, dict[tuple[str, str, str], tuple[float, Any]]] = {}
        self._kept: dict[str, dict[str, Any]] = {}
        self._each: dict[str, dict[str, tuple[float, Any]]] = {}
        self._directories: dict[str, _Snapshot] = {}

    def __repr__(self) -> str:
        """Counts only: the entries may hold secret values."""
        return (f"Observations(ttl={self.ttl}, snapshots={len(self._snapshots)}, "
                f"fresh={sum(map(len, self._fresh.values()))})")

    @property
    def enabled(self) -> bool:
        """Whether anything is cached at all."""
        return self.ttl > 0

    # -- writes --------------------------------------------------------------------------
    def changed(self, owner: str) -> None:
        """`owner` (a kind of one environment) just wrote: nothing older is served to it."""
        if not self.enabled:
            return
        now = self._clock()
        with self._lock:
            self._written[owner] = now
            self._fresh.pop(owner, None)
            self._kept.pop(owner, None)

    # -- reads ---------------------------------------------------------------------------
    def lookup(
        self,
        owner: str,
        api: str,
        scope: str,
        key: str,
        *,
        bulk: Loader | None,
        direct: Direct,
        settled: Settled = always_settled,
        eager: bool = False,
    ) -> Any:
        """What `owner` finds under `key`: from the scope's snapshot or a fresh read, else
        `direct()` (kept as a fresh entry unless it found nothing or has not settled).
        `eager`: only a live snapshot is used; none is loaded (or waited for) first."""
        if not self.enabled:
            return direct()
        fresh = self._fresh_entry(owner, (api, scope, key))
        if fresh is not None and settled(fresh):
            return fresh
        if bulk is not None:
            snapshot = self._live(api, scope) if eager else self.snapshot(api, scope, bulk)
            value = snapshot.items.get(key) if snapshot is not None else None
            if value is not None and snapshot is not None \
                    and snapshot.started > self._written_at(owner) and settled(value):
                return value
        started = self._clock()
        value = direct()
        if value is not None and settled(value):
            entry = (started, _freeze(value))  # pickled before the lock: others wait less
            with self._lock:
                if started > self._written.get(owner, NEVER):
                    self._fresh.setdefault(owner, {})[(api, scope, key)] = entry
        return value

    def read(self, owner: str, api: str, key: str, direct: Direct,
             settled: Settled = always_settled) -> Any:
        """A single read with no bulk form, shared within the TTL (e.g. by two kinds)."""
        return self.lookup(owner, api, "", key, bulk=None, direct=direct, settled=settled)

    def snapshot(self, api: str, scope: str, load: Loader) -> _Snapshot:
        """The bulk listing of (api, scope), loaded at most once per TTL (one loader at a
        time: the others wait for it instead of listing too)."""
        name = (api, scope)
        with self._lock:
            gate = self._loading.setdefault(name, threading.Lock())
        with gate:
            current = self._live(api, scope)
            if current is not None:
                return current
            started = self._clock()
            loaded = _Snapshot(started, _Held(load()))
            with self._lock:
                self._snapshots[name] = loaded
                self._prune(started)
            return loaded

    def each(self, api: str, keys: Sequence[str], load: Batch) -> dict[str, Any]:
        """Values of `keys` that only a person changes once they exist (an ELB rule's tags,
        set when the rule is made): those read in the last `ttl` seconds are served, the
        rest read in one `load(missing)`. An environment looking for its own rule among
        a listener's 100 reads only the rules made since its last look, instead of all of
        them (20 per DescribeTags) on every look while it provisions."""
        if not self.enabled:
            return dict(load(list(keys)))
        now = self._clock()
        with self._lock:
            held = self._each.setdefault(api, {})
            kept = {k: held[k][1] for k in keys if k in held and now - held[k][0] < self.ttl}
        found = {k: _thaw(v) for k, v in kept.items()}
        missing = [k for k in keys if k not in found]
        if missing:
            loaded = load(missing)
            frozen = {k: (now, _freeze(v)) for k, v in loaded.items()}
            with self._lock:
                held = self._each.setdefault(api, {})
                for key in [k for k, (at, _) in held.items() if now - at >= self.ttl]:
                    del held[key]  # rules come and go: keep only the current interval's
                held.update(frozen)
            found.update(loaded)
        return found

    # -- directories (rule 6) ------------------------------------------------------------
    def listing(self, api: str, load: Loader) -> dict[str, Any]:
        """The directory `api` (key -> summary): loaded at most once per TTL, one loader at
        a time, and kept current in between by this process's own writes."""
        if not self.enabled:
            return dict(load())
        with self._lock:
            gate = self._loading.setdefault(("directory", api), threading.Lock())
        with gate:
            with self._lock:
                current = self._directories.get(api)
                if current is not None and self._clock() - current.started < self.ttl:
                    return dict(current.items)
            started = self._clock()
            items = dict(load())
            with self._lock:
                self._directories[api] = _Snapshot(started, items)
            return dict(items)

    def listed(self, api: str, key: str, summary: Any) -> int | None:
        """This process just made `key`: the directory shows it before its next load.
        Returns how many the directory now holds (None: none is held)."""
        with self._lock:
            current = self._directories.get(api)
            if current is None:
                return None
            items = {**current.items, key: summary}
            self._directories[api] = _Snapshot(current.started, items)
            return len(items)

    def unlisted(self, api: str, key: str) -> int | None:
        """This process just deleted `key`; how many the directory now holds (or None)."""
        with self._lock:
            current = self._directories.get(api)
            if current is None:
                return None
            items = {k: v for k, v in current.items.items() if k != key}
            self._directories[api] = _Snapshot(current.started, items)
            return len(items)

    def relist(self, api: str) -> None:
        """A write's outcome is unknown: the next look loads the directory again."""
        with self._lock:
            self._directories.pop(api, None)

    # -- kept across intervals -----------------------------------------------------------
    def kept(self, owner: str, key: str) -> Any:
        """What `owner` kept under `key` (None: nothing, or it wrote since)."""
        with self._lock:
            held = self._kept.get(owner, {}).get(key)
        return _thaw(held)

    def keep(self, owner: str, key: str, value: Any) -> None:
        """Keep `value` for `owner` until it writes (its caller checks it is still true)."""
        if self.enabled:
            frozen = _freeze(value)
            with self._lock:
                self._kept.setdefault(owner, {})[key] = frozen

    # -- internals -----------------------------------------------------------------------
    def _live(self, api: str, scope: str) -> _Snapshot | None:
        """The scope's snapshot if it is still served, without loading one."""
        with self._lock:
            current = self._snapshots.get((api, scope))
        if current is None or self._clock() - current.started >= self.ttl:
            return None
        return current

    def _written_at(self, owner: str) -> float:
        with self._lock:
            return self._written.get(owner, NEVER)

    def _fresh_entry(self, owner: str, name: tuple[str, str, str]) -> Any:
        now = self._clock()
        with self._lock:
            entry = self._fresh.get(owner, {}).get(name)
            if entry is None:
                return None
            started, held = entry
            if now - started >= self.ttl or started <= self._written.get(owner, NEVER):
                return None
        return _thaw(held)

    def _prune(self, now: float) -> None:
        """Forget writes and fresh reads older than the TTL (1,000s of environments come
        and go); under the lock. A write older than the TTL hides nothing still served."""
        horizon = now - self.ttl
        self._written = {k: t for k, t in self._written.items() if t > horizon}
        for owner in list(self._fresh):
            entries = {k: e for k, e in self._fresh[owner].items() if e[0] > horizon}
            if entries:
                self._fresh[owner] = entries
            else:
                del self._fresh[owner]
