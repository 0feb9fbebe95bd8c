"""Benchmark: how fast the operator acts on a spec change, and what an idle drift pass costs.

Prints figures; asserts nothing (targets are judged from the figures, never in a test).
Runs its own local platform on separate ports (1xxx) and its own operator, and tears both
down. Everything is read from outside the operator: `kubectl` for the spec and status, and
the moto server's request journal (tests/platform/journal.py) for the AWS calls.

    .venv/bin/python -m bench.lifecycle [--count 20] [--drift-interval 5] [--drift-passes 3]

1. Applies `count` environments at once and waits until every one is Active.
2. For each environment in turn: suspend (`spec.suspended: true`), resume (`false`) and
   scale (`kubectl scale --replicas=3`); for each, the time from the change to the ECS
   UpdateService call for that service, measured from just before `kubectl` was started
   and from when it returned (the change was accepted in between). Each change is allowed
   to settle before the next, so a measurement never includes the previous one.
3. Counts the AWS calls in a window of whole drift intervals while nothing changes, per
   environment and pass, reads and writes apart. Passes are counted from the journal
   (each pass describes the environment's ECS service once), not assumed.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from bench.platform import new_namespace, private_platform, running_operator
from tests.platform import kube, stack
from tests.platform.journal import Entry, matching, read_journal, reads, writes
from wpenv.plan import names_for

# Ports of this benchmark's platform and operator: below 2000, away from every other
# platform on the machine (dev, test sessions, bench.provision) and the ephemeral range.
PORTS = {"WPENV_ETCD_PORT": "1790", "WPENV_ETCD_PEER_PORT": "1800",
         "WPENV_APISERVER_PORT": "1443", "WPENV_MOTO_PORT": "1500",
         "WPENV_MYSQL_PORT": "1306"}
OPERATOR_HEALTH_PORT = 1080  # and 1081 for its metrics
LOCAL = stack.REPO / ".local" / "bench-lifecycle"
PROVISION_TIMEOUT = 900.0
CALL_TIMEOUT = 60.0
SETTLE_TIMEOUT = 180.0
POLL_SECONDS = 0.05
SCALED_REPLICAS = 3


@dataclass
class Env:
    """One benchmarked environment: its manifest name and its ECS service name."""

    name: str
    service: str


@dataclass
class Latencies:
    """Seconds from a change to its UpdateService, from before and from after kubectl."""

    from_before: list[float] = field(default_factory=list)
    from_after: list[float] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)


class Bench:
    """The platform's variables, the namespace, and small kubectl helpers."""

    def __init__(self, env: dict[str, str], namespace: str) -> None:
        self.env = env
        self.ns = namespace
        self.endpoint = env["AWS_ENDPOINT_URL"]

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        return kube.kubectl(*args, "-n", self.ns, env=self.env, stdin=stdin).stdout

    def objects(self) -> dict[str, dict[str, Any]]:
        """Every environment in the namespace, by name."""
        doc = json.loads(self.kubectl("get", "wpenv", "-o", "json"))
        return {item["metadata"]["name"]: item for item in doc["items"]}

    def wait(
        self, names: Sequence[str], settled: Callable[[dict[str, Any]], bool], timeout: float
    ) -> list[str]:
        """Poll until `settled` holds for every name; the names still unsettled at timeout."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.objects()
            pending = [n for n in names if n not in found or not settled(found[n])]
            if not pending or time.monotonic() > deadline:
                return pending
            time.sleep(0.3)

    def first_update(self, service: str, since: float) -> Entry | None:
        """The first ECS UpdateService for `service` that arrived at or after `since`."""
        deadline = time.monotonic() + CALL_TIMEOUT
        while time.monotonic() < deadline:
            found = matching(read_journal(self.endpoint, since), service="ecs",
                             action="UpdateService", naming=service)
            if found:
                return found[0]
            time.sleep(POLL_SECONDS)
        return None


def settled_as(phase: str, replicas: int | None = None) -> Callable[[dict[str, Any]], bool]:
    """Status describes the current generation, in `phase`, Ready, with `replicas` running."""

    def check(obj: dict[str, Any]) -> bool:
        status = obj.get("status") or {}
        conditions = status.get("conditions") or []
        ready: dict[str, Any] = next((c for c in conditions if c.get("type") == "Ready"), {})
        return (
            status.get("observedGeneration") == obj["metadata"].get("generation")
            and status.get("phase") == phase
            and ready.get("status") == "True"
            and (replicas is None or status.get("replicas") == replicas)
        )

    return check


def provision(bench: Bench, count: int) -> list[Env]:
    """Apply `count` manifests at once and wait for all of them to be Active."""
    envs = []
    docs = []
    for i in range(count):
        name, tenant = f"env{i}", f"{bench.ns}-{i}"
        docs.append({"apiVersion": "bbws.io/v1alpha1", "kind": "WordPressEnvironment",
                     "metadata": {"name": name}, "spec": {"tenantId": tenant}})
        envs.append(Env(name, names_for(bench.ns, name, tenant).service))
    started = time.monotonic()
    bench.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(docs))
    pending = bench.wait([e.name for e in envs], settled_as("Active"), PROVISION_TIMEOUT)
    took = time.monotonic() - started
    if pending:
        raise SystemExit(f"not Active after {took:.0f}s: {', '.join(pending)}")
    print(f"{count} environment(s) Active in {took:.1f}s", flush=True)
    return envs


def measure_change(
    bench: Bench, env: Env, change: Sequence[str], *,
    settled: Callable[[dict[str, Any]], bool], into: Latencies, label: str,
) -> None:
    """Make one change with kubectl, time its UpdateService, wait until it settled."""
    before = time.time()
    bench.kubectl(*change)
    after = time.time()
    entry = bench.first_update(env.service, before)
    if entry is None:
        into.missed.append(f"{env.name}: no UpdateService within {CALL_TIMEOUT:.0f}s")
    else:
        into.from_before.append(entry.time - before)
        into.from_after.append(entry.time - after)
    pending = bench.wait([env.name], settled, SETTLE_TIMEOUT)
    if pending:
        into.missed.append(f"{env.name}: did not settle after {label}")


def latencies(bench: Bench, envs: Sequence[Env]) -> dict[str, Latencies]:
    """Suspend, resume and scale each environment in turn."""
    results = {op: Latencies() for op in ("suspend", "resume", "scale")}
    for env in envs:
        patch = ("patch", "wpenv", env.name, "--type", "merge", "-p")
        measure_change(bench, env, (*patch, '{"spec":{"suspended":true}}'),
                       settled=settled_as("Suspended"), into=results["suspend"], label="suspend")
        measure_change(bench, env, (*patch, '{"spec":{"suspended":false}}'),
                       settled=settled_as("Active"), into=results["resume"], label="resume")
        measure_change(bench, env, ("scale", f"wpenv/{env.name}", f"--replicas={SCALED_REPLICAS}"),
                       settled=settled_as("Active", SCALED_REPLICAS), into=results["scale"],
                       label="scale")
    return results


def print_latencies(results: dict[str, Latencies]) -> None:
    print("operator latency, spec change -> ECS UpdateService (ms):")
    print(f"  {'change':<8} {'n':>3}  {'median':>8} {'worst':>8}   "
          f"{'median*':>8} {'worst*':>8}   (* from before kubectl started)")
    for op, result in results.items():
        if not result.from_after:
            print(f"  {op:<8} {0:>3}  no UpdateService seen")
        else:
            after, before = result.from_after, result.from_before
            print(f"  {op:<8} {len(after):>3}  {statistics.median(after) * 1000:8.0f} "
                  f"{max(after) * 1000:8.0f}   {statistics.median(before) * 1000:8.0f} "
                  f"{max(before) * 1000:8.0f}")
        for problem in result.missed:
            print(f"    {op}: {problem}")


def drift_cost(bench: Bench, envs: Sequence[Env], interval: float, passes: int) -> None:
    """AWS calls in a window of `passes` whole drift intervals while nothing changes."""
    names = [e.name for e in envs]
    pending = bench.wait(names, settled_as("Active", SCALED_REPLICAS), SETTLE_TIMEOUT)
    if pending:
        print(f"drift: skipped, not settled: {', '.join(pending)}")
        return
    time.sleep(interval)  # let any pass already under way finish
    start = time.time()
    time.sleep(interval * passes)
    end = time.time()
    window = [e for e in read_journal(bench.endpoint, start) if e.time < end]
    seen = sum(
        len(matching(window, service="ecs", action="DescribeServices", naming=env.service))
        for env in envs
    )
    if not window:
        print("drift timer not available (no AWS call in an idle window of "
              f"{end - start:.0f}s)")
        return
    expected = len(envs) * passes
    per_pass = max(seen, 1)
    by_action = collections.Counter(f"{e.service}:{e.action}" for e in window)
    print(f"idle drift pass ({end - start:.0f}s window, {len(envs)} environments, "
          f"{seen} passes seen, {expected} expected from the interval):")
    print(f"  per environment and pass: {len(reads(window)) / per_pass:.1f} reads, "
          f"{len(writes(window)) / per_pass:.1f} writes")
    calls = ", ".join(f"{k} {v / per_pass:.1f}" for k, v in sorted(by_action.items()))
    print(f"  by call: {calls}")
    for entry in writes(window)[:10]:
        print(f"  write: {entry.service} {entry.action} {entry.ids}")


def main() -> None:
    """Bring a private platform and operator up, measure, tear both down."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--drift-interval", type=float, default=5.0,
                        help="WPENV_DRIFT_INTERVAL_SECONDS of the benchmarked operator")
    parser.add_argument("--drift-passes", type=int, default=3,
                        help="whole drift intervals in the idle window")
    args = parser.parse_args()
    with private_platform(PORTS, LOCAL) as env:
        bench = Bench(env, new_namespace(env))
        operator_env = {**env, "WPENV_DRIFT_INTERVAL_SECONDS": str(args.drift_interval)}
        with running_operator(operator_env, LOCAL / "operator.log", OPERATOR_HEALTH_PORT):
            envs = provision(bench, args.count)
            print_latencies(latencies(bench, envs))
            drift_cost(bench, envs, args.drift_interval, args.drift_passes)


if __name__ == "__main__":
    main()
