"""What every handler shares, built once at start-up and kept in kopf's memo."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from wpenv import engine, kube, leases, metrics
from wpenv.aws import Clients
from wpenv.operator.decisions import Announcements, RouteClaim
from wpenv.operator.throttle import LeasedSlots, ProvisionSlots
from wpenv.operator.timing import Stopwatch
from wpenv.plan import Endpoint, url_for
from wpenv.reconcilers.base import Context, Resource
from wpenv.reconcilers.observations import Observations
from wpenv.reconcilers.pool import endpoint
from wpenv.settings import Settings

# How long a route claim this process wrote outranks kopf's index, which follows the watch
# (a few seconds behind at worst under load).
WRITTEN_ROUTES_SECONDS = 60.0
# How long a pass waits for a critical section another process holds (placement, the
# user-pool count) before it gives up and is retried; and how long a load balancer place
# stays reserved for a tenant whose rule is not made yet, from its last pass (HLD 5.1's
# 15 minutes: a provision that makes no pass for that long was abandoned).
EXCLUSIVE_WAIT_SECONDS = 10.0
RESERVATION_SECONDS = 15 * 60


def provision_slots(settings: Settings) -> ProvisionSlots:
    """The slots, and the process's coordination (`wpenv.leases`), as the settings say.

    local: in memory, as one process needs. leases: Lease objects every process shares,
    renewed in the background from now on.
    """
    if settings.coordination == "local":
        leases.install(leases.Local())
        return ProvisionSlots(settings.max_concurrent_provisions)
    shared = leases.Leases(settings.lease_namespace, settings.lease_duration_seconds)
    leases.install(leases.Coordinated(shared, EXCLUSIVE_WAIT_SECONDS, RESERVATION_SECONDS))
    slots = LeasedSlots(settings.max_concurrent_provisions, shared)
    slots.renewer.start()
    return slots


@dataclass
class App:
    """What every handler shares: settings, AWS clients, the provisioning slots."""

    settings: Settings
    clients: Clients
    slots: ProvisionSlots
    resources: list[Resource]
    locks: dict[str, threading.Lock] = field(default_factory=dict)
    said: Announcements = field(default_factory=Announcements)
    # Consecutive troubled passes per environment: the backoff exponent. Not kopf's
    # `retry`, which also counts every routine poll of a rollout and would make the
    # first hiccup after a long rollout wait minutes.
    streaks: dict[str, int] = field(default_factory=dict)
    # Consecutive passes per environment that only waited (nothing done, nothing wrong):
    # each one doubles the delay of the next look (engine.poll_delay).
    waits: dict[str, int] = field(default_factory=dict)
    stopwatch: Stopwatch = field(default_factory=Stopwatch)
    # Route claims as this process last wrote them (owner -> (when, claim)): the `routes`
    # index catches up from the watch a moment later (decisions.with_own_writes).
    written_routes: dict[str, tuple[float, RouteClaim | None]] = field(default_factory=dict)
    # One cache of AWS observations for every environment (wpenv.reconcilers.observations).
    observations: Observations = field(default_factory=Observations)
    _locks_guard: threading.Lock = field(default_factory=threading.Lock)

    def wrote_route(self, owner: str, claim: RouteClaim | None) -> None:
        """Remember the route claim a status this process patches gives `owner`."""
        with self._locks_guard:
            self.written_routes[owner] = (time.monotonic(), claim)

    def own_route_writes(self) -> dict[str, RouteClaim | None]:
        """The claims written in the last WRITTEN_ROUTES_SECONDS (older ones the index has)."""
        horizon = time.monotonic() - WRITTEN_ROUTES_SECONDS
        with self._locks_guard:
            for owner in [o for o, (at, _) in self.written_routes.items() if at < horizon]:
                del self.written_routes[owner]
            return {owner: claim for owner, (_, claim) in self.written_routes.items()}

    def __post_init__(self) -> None:
        """The provisioning gauges read these slots at every scrape (never stale)."""
        if not self.observations.enabled:
            self.observations = Observations(self.settings.observation_ttl)
        metrics.follow_slots(lambda: self.slots.held, lambda: self.slots.waiting)

    def lock_for(self, uid: str) -> threading.Lock:
        """One lock per environment: the drift check never races a reconcile pass."""
        with self._locks_guard:
            return self.locks.setdefault(uid, threading.Lock())

    def context(
        self, namespace: str, name: str, spec: Mapping[str, Any], status: Mapping[str, Any],
        *, eager: bool = False,
    ) -> Context:
        """The engine's Context for one pass, recording new ids in the status at once."""
        ctx = engine.make_context(
            namespace, name, spec,
            settings=self.settings,
            clients=self.clients,
            ids=status.get("resources") or {},
            record=kube.resource_recorder(namespace, name),
        )
        ctx.observations = self.observations
        ctx.eager = eager
        return ctx

    def streak(self, uid: str, outcome: engine.Outcome | None = None) -> int:
        """Troubled passes in a row so far; with `outcome`, count it in (or reset) first."""
        with self._locks_guard:
            if outcome is not None:
                self.streaks[uid] = self.streaks.get(uid, 0) + 1 if outcome.troubled else 0
            return self.streaks.get(uid, 0)

    def waited(self, uid: str, outcome: engine.Outcome | None = None) -> int:
        """Passes in a row so far that only waited; with `outcome`, count it in (or reset)."""
        with self._locks_guard:
            if outcome is not None:
                waiting = not (outcome.acted or outcome.ready or outcome.troubled
                               or outcome.failure)
                self.waits[uid] = self.waits.get(uid, 0) + 1 if waiting else 0
            return self.waits.get(uid, 0)

    def forget(self, uid: str) -> None:
        """Drop what was kept for an environment that is gone (1,000s come and go)."""
        with self._locks_guard:
            self.locks.pop(uid, None)
            self.streaks.pop(uid, None)
            self.waits.pop(uid, None)
        self.said.forget(uid)
        self.stopwatch.forget(uid)
        self.slots.forget(uid)

    def endpoint_of(self, listener_arn: str) -> Endpoint:
        """Where a placed tenant answers (asked once per process: the pool stays)."""
        return endpoint(self.clients, listener_arn)


def observed_fields(app: App, ctx: Context, outcome: engine.Outcome) -> dict[str, Any]:
    """Status fields that mirror what AWS reports (replicas, URL, selector)."""
    fields: dict[str, Any] = {"selector": engine.selector(ctx)}
    if outcome.facts is not None:
        fields["replicas"] = outcome.facts.running
        fields["readyReplicas"] = outcome.facts.healthy
    if ctx.ids.get("listenerArn"):
        fields["url"] = url_for(ctx.spec, app.endpoint_of(ctx.ids["listenerArn"]))
    return fields

