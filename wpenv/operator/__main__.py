"""`python -m wpenv.operator`: run the operator against the cluster in KUBECONFIG.

A small entry point instead of `kopf run`, so the settings are validated before any watch
starts and the liveness and metrics endpoints come from the same Settings class.
"""

from __future__ import annotations

import os

import kopf

from wpenv import kube, metrics
from wpenv.archive import database
from wpenv.operator import handlers, leadership, logs  # handlers: importing registers them
from wpenv.settings import Settings

# What makes a WPENV_NAMESPACES entry a pattern rather than a namespace's name (kopf's).
GLOB = frozenset("*?!")


def namespaces_of(value: str) -> list[str]:
    """The namespaces (or patterns) of WPENV_NAMESPACES; none: the whole cluster."""
    return [n.strip() for n in value.split(",") if n.strip()]


def kopf_settings(namespaces: list[str]) -> kopf.OperatorSettings:
    """kopf's settings for this scope, before any startup handler adds to them.

    Exact names need no scanning: kopf would otherwise list and watch namespaces to match
    patterns, which the install's ClusterRole does not grant (it is written for the whole
    cluster), and retry that for most of a minute before it starts. Scanning off also stops
    kopf watching CRDs, so a CRD installed after start-up needs a restart either way.
    """
    settings = kopf.OperatorSettings()
    settings.scanning.disabled = bool(namespaces) and not any(
        GLOB & set(n) for n in namespaces
    )
    return settings


def main() -> None:
    """Validate settings, wait to lead the shard if coordinated, then hand over to kopf.

    kopf runs standalone (no kopf peering): with WPENV_COORDINATION=leases the shard's
    leader Lease (`leadership`) decides which replica runs the handlers.
    """
    settings = Settings()
    logs.configure(settings.log_level, handlers.ROUTINE_REQUEUES, settings.log_format)
    database.sweep_stale_option_files()
    namespaces = namespaces_of(os.environ.get("WPENV_NAMESPACES", ""))
    lead = None
    if settings.coordination == "leases":
        kube.load_config()
        metrics.serve(settings.metrics_port)  # a standby is scraped too (its gauges at 0)
        lead = leadership.wait_to_lead(settings)
    try:
        kopf.run(
            standalone=True,
            clusterwide=not namespaces,
            namespaces=namespaces,
            settings=kopf_settings(namespaces),
            liveness_endpoint=f"http://0.0.0.0:{settings.health_port}/healthz",
        )
    finally:
        if lead is not None:
            leadership.step_down(lead, settings)


if __name__ == "__main__":
    main()
