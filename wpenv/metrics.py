"""Prometheus metrics: what a platform team alerts on."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PASSES = Counter(
    "wpenv_reconcile_passes_total", "Converge passes, by result.", ["result"]
)
PROVISION_SECONDS = Histogram(
    "wpenv_provision_duration_seconds",
    "From provisioning start to Active (HLD target: 900 s).",
    buckets=(30, 60, 120, 300, 600, 900, 1800, 3600),
)
PROVISIONS_RUNNING = Gauge("wpenv_provisions_running", "Provisions holding a slot now.")
PROVISIONS_QUEUED = Gauge("wpenv_provisions_queued", "Environments waiting for a slot.")
DEPROVISION_SECONDS = Histogram(
    "wpenv_deprovision_duration_seconds",
    "Successful deprovisioning attempts: archive, verify, remove (HLD target: 600 s).",
    buckets=(30, 60, 120, 300, 600, 900, 1800),
)
DRIFT_PASSES = Counter("wpenv_drift_passes_total", "Drift checks run.")
DRIFT_CORRECTIONS = Counter(
    "wpenv_drift_corrections_total", "Resources the drift check found changed and repaired."
)
ORPHANED_RESOURCES = Gauge(
    "wpenv_orphaned_resources",
    "Resources the operator tagged that no WordPressEnvironment owns, by kind (orphan scan).",
    ["kind"],
)
