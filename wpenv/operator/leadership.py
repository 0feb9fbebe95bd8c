"""One active process per shard: the leader Lease, and the standby's wait for it.

Why a Lease of our own rather than kopf's peering: peering pauses an operator while a peer
of *higher* priority is alive, and pauses every one of them when two have the same
priority, which replicas of one Deployment do; it also lets both run for the moment
before they see each other, and a pause does not stop handlers already running. A Lease
taken with optimistic concurrency (`wpenv.leases`) gives one holder at a time, like
client-go's leader election, and needs only the `leases` rights the slots use anyway.

The standby answers its liveness probe while it waits, starts kopf only once it leads,
and a leader that cannot renew within two thirds of the lease's duration ends the process
at once (its pod restarts as a standby), before another can take the lease over.
"""

from __future__ import annotations

import http.server
import logging
import os
import threading
import time

from wpenv.leases import Lease, Leases, Renewer
from wpenv.settings import Settings

log = logging.getLogger(__name__)

PURPOSE = "leader"
EXIT_LOST = 3  # the process's exit status when it lost the lead


def lease_name(settings: Settings) -> str:
    """The shard's leader Lease."""
    return f"wpenv-leader-{settings.shard_name}"


class _Standby(http.server.BaseHTTPRequestHandler):
    """`GET /healthz` answers 200 while the process waits to lead (it is alive)."""

    def do_GET(self) -> None:
        """Alive, and standing by."""
        body = b"standby\n"
        self.send_response(200 if self.path.startswith("/healthz") else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Probes are not worth a log line."""


def _lost(name: str) -> None:
    """The lead is gone: stop acting at once, before another leader starts."""
    log.error("lost the leader lease %s; exiting so that only the new leader acts", name)
    logging.shutdown()
    os._exit(EXIT_LOST)


def wait_to_lead(settings: Settings, leases: Leases | None = None) -> Renewer:
    """Block until this process holds its shard's leader Lease; then keep renewing it.

    The returned Renewer renews it (and ends the process if it is lost); `step_down`
    gives it up on a clean stop, so a standby need not wait for it to expire.
    """
    leases = leases or Leases(settings.lease_namespace, settings.lease_duration_seconds)
    name = lease_name(settings)
    server = http.server.ThreadingHTTPServer(("0.0.0.0", settings.health_port), _Standby)  # noqa: S104
    threading.Thread(target=server.serve_forever, name="standby-probe", daemon=True).start()
    try:
        held = _acquire(leases, name)
    finally:
        server.shutdown()
        server.server_close()
    log.info("leading shard %s as %s", settings.shard_name, leases.identity)
    renewer = Renewer(leases, lost=_lost)
    renewer.keep(held)
    renewer.start()
    return renewer


def _acquire(leases: Leases, name: str) -> Lease:
    """Try every third of the lease duration until the lease is ours."""
    said = False
    while True:
        held = leases.acquire(name, PURPOSE, leases.identity)
        if held is not None:
            return held
        if not said:
            current = leases.get(name)
            log.info("standing by: %s leads", current.holder if current else "nobody")
            said = True
        time.sleep(max(leases.duration / 3, 0.2))


def step_down(renewer: Renewer, settings: Settings) -> None:
    """Release the leader Lease on a clean stop, so that a standby takes over at once."""
    renewer.stop()
    held = renewer.drop(lease_name(settings))
    if held is not None:
        renewer.leases.release(held)
        log.info("gave up the lead of shard %s", settings.shard_name)
