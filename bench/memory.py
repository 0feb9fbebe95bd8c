"""Benchmark: the operator's memory against the number of settled (Active) environments.

Provisioning 1,000 real environments does not fit two shared cores in a useful time
(bench.scale does it end to end); the memory an environment costs once it is Active does
not need it. So: one environment is provisioned
for real through the operator; its object (spec, status with every AWS id, kopf's
annotations, finalizer) is the template of `count - 1` copies, each with its own name and
tenant, written straight to the API server with that status. The operator takes them up
from its watch as it would any Active environment: its kopf indices, per-object memory,
timers (catch-up every 15 s) and inventory, and nothing more. The drift interval is set
far beyond the run (`DRIFT`), so no copy makes a drift pass (its AWS resources do not
exist); every other setting is the default. The benchmark says how many AWS requests the
operator made meanwhile (expected: none).

    .venv/bin/python -m bench.memory [--counts 1,100,200,500,1000] [--top 25]

1. RSS empty, then with 1 (the real one), then at each count, once the operator's
   `wpenv_environments{phase="Active"}` gauge shows them all and RSS has settled.
2. The operator restarted with the largest count present (kopf lists and resumes them
   all, as after a crash or an upgrade): RSS.
3. Restarted once more under tracemalloc (`bench.traced`): the largest live allocation
   sites, and the traced total (tracemalloc's own bookkeeping inflates that RSS, so the
   figures of 1 and 2 come from an untraced operator).
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import os
import signal
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.platform import new_namespace, private_platform, running_operator
from bench.scale import FAST, apply, phases
from tests.kubeapi import api_for
from tests.platform import kube, stack
from tests.platform.journal import read_journal
from wpenv.kube import MERGE_PATCH, environments

BASE = int(os.environ.get("WPENV_BENCH_PORT_BASE", "25000"))
PORTS = {"WPENV_ETCD_PORT": str(BASE + 790), "WPENV_ETCD_PEER_PORT": str(BASE + 800),
         "WPENV_APISERVER_PORT": str(BASE + 3443), "WPENV_MOTO_PORT": str(BASE + 2000),
         "WPENV_MYSQL_PORT": str(BASE + 306)}
HEALTH_PORT = BASE + 80  # and +81 for its metrics
LOCAL = stack.REPO / ".local" / "bench-memory"
DRIFT = 10_000_000.0  # seconds (about 4 months): no copy's drift turn comes in the run
SETTLE_SECONDS = 8.0
WRITERS = 4
# Set by the API server on every object; a copy gets its own.
SERVER_SET = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields")


def rss_mb(pid: int) -> float:
    """A process's resident set now, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def active(metrics_port: int) -> int:
    """How many Active environments the operator's inventory holds (its gauge)."""
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as answer:
        for line in answer.read().decode().splitlines():
            if line.startswith('wpenv_environments{phase="Active"}'):
                return int(float(line.split()[1]))
    return 0


def settled_rss(pid: int, metrics_port: int, count: int, timeout: float = 900) -> float:
    """RSS once the operator shows `count` Active and its RSS stopped moving (MB)."""
    deadline = time.monotonic() + timeout
    while active(metrics_port) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the operator shows {active(metrics_port)} of {count} Active")
        time.sleep(1)
    before = rss_mb(pid)
    while True:
        time.sleep(SETTLE_SECONDS)
        now = rss_mb(pid)
        if abs(now - before) < 1 or time.monotonic() > deadline:
            return now
        before = now


def template(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The real environment as the model of its copies: what the API server sets removed."""
    model = copy.deepcopy(dict(obj))
    for key in SERVER_SET:
        model["metadata"].pop(key, None)
    return model


def copy_of(model: Mapping[str, Any], tenant: str, namespace: str, index: int) -> dict[str, Any]:
    """Copy `index`: the model's text with its name, namespace and tenant replaced."""
    name = f"copy{index}"
    text = json.dumps(model)
    text = text.replace(tenant, f"{namespace}-{index}")
    text = text.replace(model["metadata"]["namespace"], namespace)
    body: dict[str, Any] = json.loads(text)
    body["metadata"]["name"] = name
    return body


def write_copies(model: Mapping[str, Any], tenant: str, namespace: str,
                 indices: range) -> None:
    """Create the copies and give each the model's status (two requests each)."""
    api = api_for(os.environ["KUBECONFIG"])

    def one(index: int) -> None:
        body = copy_of(model, tenant, namespace, index)
        status = body.pop("status")
        api.request("POST", environments(namespace), body=body)
        api.request("PATCH", environments(namespace, body["metadata"]["name"], "status"),
                    body={"status": status}, content_type=MERGE_PATCH)

    with ThreadPoolExecutor(WRITERS) as pool:
        list(pool.map(one, indices))


def real_one(env: dict[str, str], pid: int, metrics_port: int) -> tuple[dict[str, Any], str]:
    """Provision one environment through the operator; its object and tenant."""
    namespace = new_namespace(env)
    (made,) = apply(env, namespace, 1)
    deadline = time.monotonic() + 600
    while phases(env, namespace).get(made.name) != "Active":
        if time.monotonic() > deadline:
            raise RuntimeError("the real environment did not become Active in 600 s")
        time.sleep(2)
    print(f"1 (provisioned for real): RSS {settled_rss(pid, metrics_port, 1):.0f} MB",
          flush=True)
    obj = api_for(os.environ["KUBECONFIG"]).request("GET", environments(namespace, made.name))
    return obj, str(obj["spec"]["tenantId"])


def aws_requests(endpoint: str, since: float) -> int:
    """AWS requests the platform answered since `since` (epoch seconds)."""
    return sum(1 for e in read_journal(endpoint, since, timeout=120) if e.time > since)


def grow(env: dict[str, str], operator_env: dict[str, str], counts: list[int]) -> list[str]:
    """RSS empty, with the real one, then at each count; the namespaces used."""
    with running_operator(operator_env, LOCAL / "operator.log", HEALTH_PORT) as proc:
        metrics_port = HEALTH_PORT + 1
        print(f"operator RSS empty: {rss_mb(proc.pid):.0f} MB", flush=True)
        obj, tenant = real_one(env, proc.pid, metrics_port)
        since = time.time()
        namespace = new_namespace(env)
        model, made = template(obj), 1
        rows = [(1, rss_mb(proc.pid))]
        for count in [c for c in counts if c > 1]:
            started = time.monotonic()
            write_copies(model, tenant, namespace, range(made, count))
            made = count
            rss = settled_rss(proc.pid, metrics_port, count)
            rows.append((count, rss))
            print(f"{count:5d} Active: RSS {rss:6.0f} MB (copies written and taken up in "
                  f"{time.monotonic() - started:.0f}s)", flush=True)
        print(f"AWS requests while the copies were taken up: "
              f"{aws_requests(env['AWS_ENDPOINT_URL'], since)}")
    report(rows)
    return [obj["metadata"]["namespace"], namespace]


def report(rows: list[tuple[int, float]]) -> None:
    """Per-environment cost between the counts, and the line through them."""
    (n0, m0), (n1, m1) = rows[0], rows[-1]
    if n1 > n0:
        slope = (m1 - m0) / (n1 - n0) * 1000
        print(f"per environment: {slope:.0f} KB ({n0} -> {n1}); at 1,000: "
              f"{m0 + slope * (1000 - n0) / 1000:.0f} MB by that line")
    for (a, ma), (b, mb) in itertools.pairwise(rows):
        print(f"    {a:5d} -> {b:5d}: {(mb - ma) / (b - a) * 1000:6.0f} KB each")


def restarted(operator_env: dict[str, str], count: int, top: int | None) -> None:
    """The operator started with `count` present: RSS, then tracemalloc's top sites."""
    with running_operator(operator_env, LOCAL / "operator.log", HEALTH_PORT) as proc:
        rss = settled_rss(proc.pid, HEALTH_PORT + 1, count)
        print(f"restarted with {count} Active: RSS {rss:.0f} MB", flush=True)
    if top is None:
        return
    trace_file = LOCAL / "trace.txt"
    trace_file.unlink(missing_ok=True)
    traced = {**operator_env, "WPENV_TRACE_FILE": str(trace_file)}
    with traced_operator(traced) as pid:
        rss = settled_rss(pid, HEALTH_PORT + 1, count)
        os.kill(pid, signal.SIGUSR1)
        for _ in range(120):
            if trace_file.exists() and trace_file.stat().st_size:
                break
            time.sleep(1)
        time.sleep(1)
    print(f"restarted under tracemalloc with {count} Active: RSS {rss:.0f} MB (inflated by "
          "tracemalloc's own bookkeeping); largest live allocation sites:")
    text = trace_file.read_text() if trace_file.exists() else "(no trace written)"
    blocks = text.split("\n\n")
    print("\n\n".join(blocks[: top + 1]))


@contextmanager
def traced_operator(env: dict[str, str], timeout: float = 600) -> Iterator[int]:
    """`bench.traced` against the platform (its pid): it starts slowly, tracing its imports."""
    proc = kube.spawn_operator(env, LOCAL / "operator.log", HEALTH_PORT,
                               (sys.executable, "-m", "bench.traced"))
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{HEALTH_PORT}/healthz",
                                            timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the traced operator did not start") from None
                time.sleep(1)
        yield proc.pid
    finally:
        kube.stop_operator(proc)


def main() -> None:
    """Bring a private platform up, measure, tear it down."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--counts", default="1,100,200,500,1000",
                        help="Active environments to measure at, ascending")
    parser.add_argument("--top", type=int, default=25, help="allocation sites to print")
    parser.add_argument("--no-trace", action="store_true", help="skip step 3")
    args = parser.parse_args()
    counts = sorted({int(c) for c in args.counts.split(",")})
    os.environ.update(FAST)
    with private_platform(PORTS, LOCAL) as env:
        os.environ["KUBECONFIG"] = env["KUBECONFIG"]
        operator_env = {**env, **FAST, "WPENV_DRIFT_INTERVAL_SECONDS": str(DRIFT),
                        "WPENV_ORPHAN_SCAN_INTERVAL_SECONDS": str(DRIFT),
                        "WPENV_LOG_LEVEL": "WARNING", "WPENV_LOG_FORMAT": "plain"}
        grow(env, operator_env, counts)
        restarted(operator_env, counts[-1], None if args.no_trace else args.top)


if __name__ == "__main__":
    main()
