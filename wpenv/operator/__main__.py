"""`python -m wpenv.operator`: run the operator against the cluster in KUBECONFIG.

A small entry point instead of `kopf run`, so the settings are validated before any watch
starts and the liveness and metrics endpoints come from the same Settings class.
"""

from __future__ import annotations

import os

import kopf

from wpenv import kube, metrics
from wpenv.operator import handlers, leadership, logs  # handlers: importing registers them
from wpenv.settings import Settings


def main() -> None:
    """Validate settings, wait to lead the shard if coordinated, then hand over to kopf.

    kopf runs standalone (no kopf peering): with WPENV_COORDINATION=leases the shard's
    leader Lease (`leadership`) decides which replica runs the handlers.
    """
    settings = Settings()
    logs.configure(settings.log_level, handlers.ROUTINE_REQUEUES, settings.log_format)
    namespaces = [n for n in os.environ.get("WPENV_NAMESPACES", "").split(",") if n]
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
            liveness_endpoint=f"http://0.0.0.0:{settings.health_port}/healthz",
        )
    finally:
        if lead is not None:
            leadership.step_down(lead, settings)


if __name__ == "__main__":
    main()
