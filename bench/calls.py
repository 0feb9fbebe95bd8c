"""Benchmark: the AWS calls of one provision and of one idle pass, by operation.

``python -m bench.calls [--tenants N]``

In-process engine against a private platform (no operator, no Kubernetes): a tenant is
converged from nothing until ready, then converged once more with nothing to do (what the
drift check runs). Printed: the calls of the first pass (the one that creates everything),
of the whole provision (the first pass plus the polls while the service rolls out), and
of the idle pass, each by operation. Polls re-observe everything, so their count follows
the simulator's delay; the first and the idle pass do not.
"""

from __future__ import annotations

import argparse
import collections
import time
import uuid
from typing import Any

import boto3

from bench.platform import private_platform
from tests.platform import stack
from wpenv import engine
from wpenv.aws import Clients
from wpenv.settings import Settings

PORTS = {"WPENV_ETCD_PORT": "27791", "WPENV_ETCD_PEER_PORT": "27801",
         "WPENV_APISERVER_PORT": "27444", "WPENV_MOTO_PORT": "27001",
         "WPENV_MYSQL_PORT": "27307"}
Tally = collections.Counter[str]


def _line(label: str, calls: Tally) -> str:
    parts = ", ".join(f"{op} {n}" for op, n in sorted(calls.items(), key=lambda i: (-i[1], i[0])))
    return f"{label}: {sum(calls.values())} calls ({parts})"


def measure(spec: dict[str, Any]) -> tuple[Tally, Tally, int, Tally]:
    """(first pass, whole provision, passes, idle pass) for one new tenant."""
    settings = Settings()
    session = boto3.session.Session(region_name=settings.region)
    calls: Tally = collections.Counter()
    session.events.register("before-call", lambda model, **_: calls.update([model.name]))
    clients = Clients(settings, session=session)
    tenant = f"b{uuid.uuid4().hex[:8]}"
    ctx = engine.make_context("bench", tenant, {"tenantId": tenant, **spec},
                              settings=settings, clients=clients)
    resources = engine.default_resources()
    passes, first = 0, Tally()
    while True:
        passes += 1
        outcome = engine.converge(ctx, resources)
        if passes == 1:
            first = Tally(calls)
        if outcome.ready or outcome.failure:
            break
        time.sleep(outcome.retry_after or 1)
    assert outcome.failure is None, outcome.failure
    provision = Tally(calls)
    calls.clear()
    engine.converge(ctx, resources)
    return first, provision, passes, Tally(calls)


def main() -> None:
    """Bring a private platform up, count, tear it down."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=3, help="tenants measured one by one")
    args = parser.parse_args()
    local = stack.REPO / ".local" / "bench-calls"
    spec = {"autoscaling": {"minReplicas": 2, "maxReplicas": 4, "targetCpuUtilization": 60}}
    with private_platform(PORTS, local):
        for index in range(args.tenants):
            first, provision, passes, idle = measure(spec)
            print(f"tenant {index + 1} (identity on, autoscaling on):")
            print("  " + _line("first pass", first))
            print("  " + _line(f"whole provision ({passes} passes)", provision))
            print("  " + _line("idle pass", idle))


if __name__ == "__main__":
    main()
