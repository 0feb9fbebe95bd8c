"""`python -m wpenv.operator`: run the operator against the cluster in KUBECONFIG.

A small entry point instead of `kopf run`, so the settings are validated before any watch
starts and the liveness and metrics endpoints come from the same Settings class.
"""

from __future__ import annotations

import os

import kopf

from wpenv.operator import handlers, logs  # handlers: importing registers them
from wpenv.settings import Settings


def main() -> None:
    """Validate settings, then hand the event loop to kopf."""
    settings = Settings()
    logs.configure(settings.log_level, handlers.ROUTINE_REQUEUES, settings.log_format)
    namespaces = [n for n in os.environ.get("WPENV_NAMESPACES", "").split(",") if n]
    kopf.run(
        standalone=True,
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=f"http://0.0.0.0:{settings.health_port}/healthz",
    )


if __name__ == "__main__":
    main()
