"""Prometheus metrics: what a platform team alerts on (README, Metrics and alerts).

Three kinds of value, each kept exact in its own way:
- counters and histograms of things that happened (passes, AWS calls, durations);
- gauges computed when Prometheus scrapes, from what the operator holds at that moment:
  the `Inventory` of every environment the watch has shown (phases, work queue,
  provisions under way) and the provisioning slots (`follow_slots`). Nothing is
  incremented on arrival and decremented on departure, so nothing can drift;
- gauges set from a fresh count (orphans, user pools, load-balancer pool capacity).

The controller-runtime families (`controller_runtime_*`, `workqueue_depth`) have the names
and labels that existing controller dashboards read.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from wpenv.api.models import Phase

# --- the controller-runtime families ------------------------------------------------------

RECONCILES = Counter(
    "controller_runtime_reconcile_total",
    "Reconcile calls per controller, by result (success, error, requeue_after).",
    ["controller", "result"],
)
RECONCILE_ERRORS = Counter(
    "controller_runtime_reconcile_errors_total",
    "Reconcile calls that ended in an error, per controller.",
    ["controller"],
)
RECONCILE_SECONDS = Histogram(
    "controller_runtime_reconcile_time_seconds",
    "Length of one reconcile call, per controller.",
    ["controller"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)

# --- the operator's own ---------------------------------------------------------------------

PASSES = Counter(
    "wpenv_reconcile_passes_total", "Converge passes, by result.", ["result"]
)
# HLD 6 (SLAs): provisioning < 15 min, offboarding < 10 min, suspension < 2 min,
# resumption < 5 min. Buckets cluster around each target so the SLA line is a bucket edge.
TARGETS = {"provision": 900.0, "deprovision": 600.0, "suspend": 120.0, "resume": 300.0}
PROVISION_SECONDS = Histogram(
    "wpenv_provision_duration_seconds",
    "From provisioning start to Active (HLD target: 900 s).",
    buckets=(60, 120, 300, 450, 600, 750, 900, 1200, 1800, 3600),
)
DEPROVISION_SECONDS = Histogram(
    "wpenv_deprovision_duration_seconds",
    "From the deletion request to everything archived and removed (HLD target: 600 s).",
    buckets=(60, 120, 240, 360, 480, 600, 900, 1200, 1800),
)
SUSPEND_SECONDS = Histogram(
    "wpenv_suspend_duration_seconds",
    "From the first pass that saw suspended: true to Suspended (HLD target: 120 s).",
    buckets=(10, 20, 30, 60, 90, 120, 180, 300, 600),
)
RESUME_SECONDS = Histogram(
    "wpenv_resume_duration_seconds",
    "From the first pass that saw suspended: false to Active again (HLD target: 300 s).",
    buckets=(30, 60, 120, 180, 240, 300, 450, 600, 900),
)
DURATIONS = {
    "provision": PROVISION_SECONDS,
    "deprovision": DEPROVISION_SECONDS,
    "suspend": SUSPEND_SECONDS,
    "resume": RESUME_SECONDS,
}
SLA_MISSES = Counter(
    "wpenv_sla_misses_total",
    "Operations that took longer than their HLD target, by operation.",
    ["operation"],
)
PROVISIONS_RUNNING = Gauge("wpenv_provisions_running", "Provisions holding a slot now.")
PROVISIONS_QUEUED = Gauge("wpenv_provisions_queued", "Environments waiting for a slot.")
DRIFT_PASSES = Counter("wpenv_drift_passes_total", "Drift checks run.")
DRIFT_CORRECTIONS = Counter(
    "wpenv_drift_corrections_total", "Resources the drift check found changed and repaired."
)
ORPHANED_RESOURCES = Gauge(
    "wpenv_orphaned_resources",
    "Resources the operator tagged that no WordPressEnvironment owns, by kind (orphan scan).",
    ["kind"],
)
AWS_CALLS = Counter(
    "wpenv_aws_calls_total",
    "AWS API calls (after botocore's retries), by service, operation and outcome: "
    "'ok', the AWS error code, or the client-side exception's name.",
    ["service", "operation", "outcome"],
)
AWS_SECONDS = Histogram(
    "wpenv_aws_call_duration_seconds",
    "Length of one AWS API call, botocore's retries included.",
    ["service", "operation"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
AWS_THROTTLED = Counter(
    "wpenv_aws_throttled_total",
    "AWS answers that botocore classifies as throttling (each attempt counts).",
    ["service", "operation"],
)
AWS_RATE_WAIT = Histogram(
    "wpenv_aws_rate_limit_wait_seconds",
    "Time an AWS call attempt waited for the client-side rate limit (only those that "
    "waited), by service and operation.",
    ["service", "operation"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
USER_POOLS = Gauge("wpenv_user_pools_in_use", "Cognito user pools in the account (last count).")
USER_POOL_QUOTA = Gauge("wpenv_user_pool_quota", "The account's user pool quota (settings).")
USER_POOL_USED = Gauge(
    "wpenv_user_pool_quota_used_ratio", "User pools in the account over the quota (0..1)."
)
LB_POOL_USED = Gauge(
    "wpenv_lb_pool_capacity_used_ratio",
    "Share of one load balancer's quota in use (0..1), by load balancer and quota "
    "(rules, target_groups, targets), as last counted when placing a tenant.",
    ["load_balancer", "quota"],
)


def observe_duration(operation: str, seconds: float) -> None:
    """Record how long a provision, deprovision, suspend or resume took; count a miss."""
    DURATIONS[operation].observe(seconds)
    if seconds > TARGETS[operation]:
        SLA_MISSES.labels(operation).inc()


def follow_slots(running: Callable[[], int], queued: Callable[[], int]) -> None:
    """Read the provisioning gauges from the limiter itself, at every scrape."""
    PROVISIONS_RUNNING.set_function(running)
    PROVISIONS_QUEUED.set_function(queued)


def set_user_pools(in_use: int, quota: int) -> None:
    """The account's user pools against the quota, from a fresh ListUserPools count."""
    USER_POOLS.set(in_use)
    USER_POOL_QUOTA.set(quota)
    USER_POOL_USED.set(in_use / quota if quota else 0.0)


def set_lb_pool_capacity(load_balancer: str, quota: str, used: int, limit: int) -> None:
    """The hook for the load-balancer pool: call it whenever the pool counts a quota.

    `load_balancer` names the balancer (its name, not its ARN, keeps labels short),
    `quota` the quota counted ("rules", "target_groups", "targets"). The
    PrometheusRule alerts above 0.8 (manifests/monitoring/prometheusrule.yaml).
    """
    LB_POOL_USED.labels(load_balancer=load_balancer, quota=quota).set(
        used / limit if limit else 0.0
    )


# --- what the watch shows: phases, the work queue, provisions under way -----------------

NO_PHASE = "New"  # created, not yet seen by a handler
RECENTLY_GONE = 256
WORKQUEUE = "wordpressenvironment"


@dataclass(frozen=True)
class Seen:
    """One environment as the last watch event showed it."""

    namespace: str
    name: str
    tenant: str
    phase: str
    pending: bool  # work outstanding: a spec not yet handled, a deletion, a transition
    provision_started: float | None = None  # epoch seconds, while provisioning


class Inventory(Collector):
    """Every environment the operator's watch has shown, and the gauges derived from it.

    Fed by every watch event (added, modified, deleted); the gauges are counted from it at
    each scrape, so they stay exact as environments come, change phase and go.
    """

    def __init__(self) -> None:
        self._objects: dict[str, Seen] = {}
        self._seen_at: dict[str, float] = {}  # uid -> when its last event came (time.time)
        # Tenants of the last few objects gone: kopf logs its last line about an object
        # after the deletion event.
        self._gone: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def saw(self, uid: str, seen: Seen) -> None:
        """An environment was added or changed."""
        with self._lock:
            self._objects[uid] = seen
            self._seen_at[uid] = time.time()
            self._gone.pop(uid, None)

    def gone(self, uid: str) -> None:
        """An environment was deleted from the API (harmless if never seen)."""
        with self._lock:
            seen = self._objects.pop(uid, None)
            self._seen_at.pop(uid, None)
            if seen is not None:
                self._gone[uid] = seen.tenant
                while len(self._gone) > RECENTLY_GONE:
                    self._gone.popitem(last=False)

    def retain(self, existing: Collection[str], listed_at: float) -> int:
        """Forget environments a list started at `listed_at` no longer has; how many.

        A watch that restarts after a long pause lists anew, and an environment deleted
        meanwhile never gets its deletion event: without this it would stay counted. One
        seen after the list started is kept (the list may predate it).
        """
        with self._lock:
            stale = [uid for uid in self._objects
                     if uid not in existing and self._seen_at.get(uid, 0.0) < listed_at]
        for uid in stale:
            self.gone(uid)
        return len(stale)

    def tenant_of(self, uid: str) -> str | None:
        """The tenantId of an environment, for log lines that name only the object."""
        with self._lock:
            seen = self._objects.get(uid)
            return seen.tenant if seen is not None else self._gone.get(uid)

    def collect(self) -> Iterator[Metric]:
        """Count phases, outstanding work and running provisions from one snapshot."""
        with self._lock:
            objects = list(self._objects.values())
        phases = GaugeMetricFamily(
            "wpenv_environments", "WordPressEnvironments by phase.", labels=["phase"]
        )
        counts = dict.fromkeys([NO_PHASE, *(p.value for p in Phase)], 0)
        for seen in objects:
            counts[seen.phase] = counts.get(seen.phase, 0) + 1
        for phase, count in counts.items():
            phases.add_metric([phase], count)
        depth = GaugeMetricFamily(
            "workqueue_depth", "Objects with work outstanding, per queue.", labels=["name"]
        )
        depth.add_metric([WORKQUEUE], sum(seen.pending for seen in objects))
        started = GaugeMetricFamily(
            "wpenv_provision_started_timestamp_seconds",
            "When each provision under way started (unix time); absent once it is not.",
            labels=["namespace", "name"],
        )
        for seen in objects:
            if seen.provision_started is not None:
                started.add_metric([seen.namespace, seen.name], seen.provision_started)
        return iter((phases, depth, started))


INVENTORY = Inventory()
REGISTRY.register(INVENTORY)


_SERVING: set[int] = set()
_LOCK_SERVE = threading.Lock()


def serve(port: int) -> None:
    """Start the `/metrics` endpoint on `port`, once per process however often asked: a
    standby starts it while it waits to lead (its scrape answers), kopf's start-up again."""
    with _LOCK_SERVE:
        if port not in _SERVING:
            start_http_server(port)
            _SERVING.add(port)

