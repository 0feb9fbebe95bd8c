"""Benchmark: the AWS calls of a provision, and the reads of an idle pass per environment.

``python -m bench.calls [--tenants N] [--no-identity]``

In-process engine against a private platform (no operator, no Kubernetes). N tenants are
converged from nothing until ready, all of them sharing one observation cache as the
operator's environments do (wpenv.reconcilers.observations). Then each is converged once
more with nothing to do (what the drift check runs), twice:
- with the cache off: every kind reads its resources on its own (how it was before);
- with the shared cache at the start of a new drift interval (its listings expired), so
  the first environment loads each listing and the others read from it.
Printed: the calls of the first tenant's first pass and whole provision, and for each idle
pass the AWS reads per environment, in total and by operation. Polls re-observe, so the
provision's count follows the simulator's delay; the idle passes do not.

WPENV_BENCH_PORT_BASE moves the platform's ports (as WPENV_TEST_PORT_BASE does the tests').
"""

from __future__ import annotations

import argparse
import collections
import os
import time
import uuid
from typing import Any

import boto3

from bench.platform import private_platform
from tests.platform import stack
from tests.platform.journal import is_write
from wpenv import engine, reasons
from wpenv.aws import Clients
from wpenv.reconcilers.base import Context, Resource
from wpenv.reconcilers.observations import Observations
from wpenv.settings import Settings

_BASE = int(os.environ.get("WPENV_BENCH_PORT_BASE", "27000"))
PORTS = {"WPENV_ETCD_PORT": str(_BASE + 791), "WPENV_ETCD_PEER_PORT": str(_BASE + 801),
         "WPENV_APISERVER_PORT": str(_BASE + 444), "WPENV_MOTO_PORT": str(_BASE + 1),
         "WPENV_MYSQL_PORT": str(_BASE + 307)}
Tally = collections.Counter[str]


class Clock:
    """A monotonic clock the benchmark can move forward (to the next drift interval)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


def _line(label: str, calls: Tally, per: int = 1) -> str:
    parts = ", ".join(f"{op} {n / per:.2f}".rstrip("0").rstrip(".")
                      for op, n in sorted(calls.items(), key=lambda i: (-i[1], i[0])))
    total = sum(calls.values()) / per
    return f"{label}: {total:.2f} ({parts})"


def _reads(calls: Tally) -> Tally:
    return Tally({op: n for op, n in calls.items() if not is_write(op)})


def provision(contexts: list[Context], resources: list[Resource], calls: Tally) -> int:
    """Converge every tenant until ready (interleaved, as concurrent provisions run)."""
    pending, passes = list(contexts), 0
    while pending:
        passes += 1
        still = []
        for ctx in pending:
            outcome = engine.converge(ctx, resources)
            assert outcome.failure is None, outcome.failure
            if not outcome.ready:
                still.append(ctx)
        pending = still
        if pending:
            time.sleep(1)
    return passes


def idle(contexts: list[Context], resources: list[Resource], calls: Tally,
         observations: Observations) -> Tally:
    """One idle pass over every tenant with `observations`; the reads it made."""
    calls.clear()
    for ctx in contexts:
        ctx.observations = observations
        outcome = engine.converge(ctx, resources)
        assert outcome.ready and not any(e.reason in (reasons.CREATED, reasons.UPDATED)
                                         for e in outcome.events), outcome.events
    return _reads(Tally(calls))


def measure(count: int, spec: dict[str, Any]) -> None:
    """Provision `count` tenants, then print the idle pass's reads off and on."""
    settings = Settings()
    session = boto3.session.Session(region_name=settings.region)
    calls: Tally = collections.Counter()
    session.events.register("before-call", lambda model, **_: calls.update([model.name]))
    clients = Clients(settings, session=session)
    clock = Clock()
    shared = Observations(settings.observation_ttl, clock=clock)
    contexts = []
    for _ in range(count):
        tenant = f"b{uuid.uuid4().hex[:8]}"
        ctx = engine.make_context("bench", tenant, {"tenantId": tenant, **spec},
                                  settings=settings, clients=clients)
        ctx.observations = shared
        contexts.append(ctx)
    resources = engine.default_resources()
    first = contexts[0]
    engine.converge(first, resources)
    print("  " + _line("first tenant, first pass (calls)", Tally(calls)))
    started = time.monotonic()
    passes = provision(contexts, resources, calls)
    print(f"  {count} tenant(s) provisioned in {time.monotonic() - started:.0f} s, "
          f"{passes} passes, {sum(calls.values())} calls")
    off = idle(contexts, resources, calls, Observations())
    print("  " + _line("idle pass, cache off: reads per environment", off, count))
    clock.offset += settings.observation_ttl  # the next drift interval: listings expired
    on = idle(contexts, resources, calls, shared)
    print("  " + _line("idle pass, shared cache: reads per environment", on, count))


def main() -> None:
    """Bring a private platform up, count, tear it down."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=3, help="tenants sharing one cache")
    parser.add_argument("--no-identity", action="store_true", help="identity off")
    args = parser.parse_args()
    local = stack.REPO / ".local" / "bench-calls"
    spec: dict[str, Any] = {
        "autoscaling": {"minReplicas": 2, "maxReplicas": 4, "targetCpuUtilization": 60},
        "identity": {"enabled": not args.no_identity},
    }
    with private_platform(PORTS, local):
        print(f"{args.tenants} tenant(s), identity {'off' if args.no_identity else 'on'}, "
              "autoscaling on:")
        measure(args.tenants, spec)


if __name__ == "__main__":
    main()
