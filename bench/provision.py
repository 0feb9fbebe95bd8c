"""Benchmark: provisioning through the operator, and the AWS calls one provision makes.

Prints figures; asserts nothing (targets are judged from the figures, never in a test).
Runs its own local platform on separate ports and tears it down.

    .venv/bin/python -m bench.provision [--count 20]
"""

from __future__ import annotations

import argparse
import collections
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import yaml

from bench.platform import new_namespace, private_platform, running_operator
from tests.platform import kube, stack
from wpenv import engine
from wpenv.aws import Clients
from wpenv.settings import Settings

PORTS = {"WPENV_ETCD_PORT": "27790", "WPENV_ETCD_PEER_PORT": "27800",
         "WPENV_APISERVER_PORT": "27443", "WPENV_MOTO_PORT": "27000",
         "WPENV_MYSQL_PORT": "27306"}


def count_calls() -> dict[str, int]:
    """AWS calls of one provision from nothing to ready, by service (in-process engine)."""
    settings = Settings()
    session = boto3.session.Session(region_name=settings.region)
    calls: collections.Counter[str] = collections.Counter()

    def tally(model: Any, **_: Any) -> None:
        calls[model.service_model.service_name] += 1

    session.events.register("before-call", tally)
    clients = Clients(settings, session=session)
    tenant = f"b{uuid.uuid4().hex[:8]}"
    ctx = engine.make_context("bench", tenant, {"tenantId": tenant},
                              settings=settings, clients=clients)
    resources = engine.default_resources()
    passes = 0
    while True:
        passes += 1
        outcome = engine.converge(ctx, resources)
        if outcome.ready or outcome.failure:
            break
        time.sleep(outcome.retry_after or 1)
    first = dict(calls)
    calls.clear()
    engine.converge(ctx, resources)
    idle = dict(calls)
    print(f"one provision: {sum(first.values())} AWS calls over {passes} passes: {first}")
    print(f"one idle pass: {sum(idle.values())} AWS calls (reads only): {idle}")
    return first


def through_operator(env: dict[str, str], local: Path, count: int) -> None:
    """Apply `count` manifests at once; time each to Ready as kubectl sees it."""
    ns = new_namespace(env)
    with running_operator(env, local / "operator-bench.log", 27080):
        docs = [{"apiVersion": "bbws.io/v1alpha1", "kind": "WordPressEnvironment",
                 "metadata": {"name": f"env{i}"},
                 "spec": {"tenantId": f"{ns}-{i}"}} for i in range(count)]
        started = time.monotonic()
        kube.kubectl("apply", "-n", ns, "-f", "-", stdin=yaml.safe_dump_all(docs), env=env)
        done: dict[str, float] = {}
        while len(done) < count and time.monotonic() - started < 900:
            out = kube.kubectl("get", "wpenv", "-n", ns, "-o",
                               "jsonpath={range .items[*]}{.metadata.name} "
                               "{.status.phase}{'\\n'}{end}", env=env).stdout
            for line in out.splitlines():
                name, _, phase = line.partition(" ")
                if phase == "Active" and name not in done:
                    done[name] = time.monotonic() - started
            time.sleep(0.5)
        times = sorted(done.values())
        print(f"{count} environment(s) applied at once: {len(times)} Active; "
              f"first {times[0]:.1f}s, median {statistics.median(times):.1f}s, "
              f"last {times[-1]:.1f}s")


def main() -> None:
    """Bring a private platform up, measure, tear it down."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=20)
    args = parser.parse_args()
    local = stack.REPO / ".local" / "bench"
    with private_platform(PORTS, local) as env:
        count_calls()
        through_operator(env, local, 1)
        through_operator(env, local, args.count)


if __name__ == "__main__":
    main()
