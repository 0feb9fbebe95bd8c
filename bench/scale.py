"""Benchmark: one operator and many environments: memory, AWS reads, rates, queue, latency.

Prints figures and writes a plot; asserts nothing (targets are judged from the figures,
never in a test). Runs its own platform (ports from WPENV_BENCH_PORT_BASE, default 24000,
laid out as the test suite's) with the simulator's delays at 0, and its own operator with
a short drift interval. Everything is read from outside the operator, as a user would see
it: kubectl, the operator's /metrics and its RSS (/proc), the platform's request journal.

    .venv/bin/python -m bench.scale --count 1000 [--drift-interval 60] [--trace]

1. One environment: its provisioning time (the yardstick of 4), RSS, idle AWS reads.
2. `count` environments applied at once (another namespace): all Active, none Failed,
   never more than the limit provisioning (the operator's own gauge, polled), RSS as the
   Active count grows, and the time against 1.3 x (count / limit) x one provision.
3. Idle for whole drift intervals: RSS, AWS reads per environment per interval by API.
4. The peak call rate of every API family over the run against its published rate, and
   the platform's throttling answers (none expected: the operator waits for tokens).
5. Spec change to ECS UpdateService (suspend, resume, scale) with all of them present,
   percentiles (bench.lifecycle measures it).
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import signal
import statistics
import time
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import yaml
from matplotlib import pyplot
from prometheus_client.parser import text_string_to_metric_families

from bench import lifecycle
from bench.platform import new_namespace, private_platform, running_operator
from tests.platform import kube, stack
from tests.platform.aws import POOL_SIZE_ENV
from tests.platform.chaos import aws_fault_state
from tests.platform.journal import Entry, read_journal, reads
from wpenv.plan import names_for
from wpenv.ratelimits import DEFAULT_LIMITS, ELBV2_VERSION, Call, Limiter
from wpenv.settings import Settings

BASE = int(os.environ.get("WPENV_BENCH_PORT_BASE", "24000"))
PORTS = {"WPENV_ETCD_PORT": str(BASE + 790), "WPENV_ETCD_PEER_PORT": str(BASE + 800),
         "WPENV_APISERVER_PORT": str(BASE + 3443), "WPENV_MOTO_PORT": str(BASE + 2000),
         "WPENV_MYSQL_PORT": str(BASE + 306)}
# The simulator's delays at 0: the benchmark measures the operator, not the stand-in. The
# data plane is off: its real WordPress tasks (PHP and a web server each, two per tenant)
# would be 2,000 processes at 1,000 tenants, which two cores and this memory cannot run;
# the simulator then answers for the tasks and their health checks, as in the tests.
FAST = {"WPENV_SIM_DELAY_SECONDS": "0", "WPENV_ECS_DRAIN_SECONDS": "0",
        "WPENV_ENI_RELEASE_SECONDS": "0", "WPENV_IAM_PROPAGATION_SECONDS": "0",
        "WPENV_DATA_PLANE": "off"}
HEALTH_PORT = BASE + 80  # and +81 for its metrics
LOCAL = stack.REPO / ".local" / "bench-scale"
POLL = 2.0
SMALL_BATCH = 50  # polled with kubectl; larger batches from the operator's gauges
# The rules one load balancer holds: the operator's default (ELBv2's default quota).
RULES_PER_BALANCER = int(Settings.model_fields["rules_per_load_balancer"].default)
SLACK = 1.3  # the target: within 1.3 x (count / limit) x one provision


@dataclass
class Run:
    """What the benchmark collects as it goes."""

    pid: int
    metrics_port: int
    endpoint: str
    rss: list[tuple[int, float]] = field(default_factory=list)  # (Active, MB)
    idle: list[tuple[int, float, float]] = field(default_factory=list)  # (envs, MB, reads)
    journal: list[Entry] = field(default_factory=list)
    pulled: float = 0.0

    def rss_mb(self) -> float:
        """The operator's resident set now, in MB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def gauge(self, name: str) -> float:
        """One unlabelled sample of the operator's /metrics."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as answer:
            for line in answer.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        return 0.0

    def pull(self) -> None:
        """Append what the journal got since the last pull (it keeps only the latest)."""
        fresh = [e for e in read_journal(self.endpoint, self.pulled, timeout=120)
                 if e.time > self.pulled]
        self.journal.extend(fresh)
        if fresh:
            self.pulled = max(e.time for e in fresh)


def phases(env: dict[str, str], ns: str) -> dict[str, str]:
    """Every environment of `ns` and its phase ("" before the first status)."""
    return {name: phase for name, (phase, _) in finished(env, ns).items()}


def apply(env: dict[str, str], ns: str, count: int) -> list[lifecycle.Env]:
    """`count` manifests in one kubectl apply, as a user's would be."""
    docs, envs = [], []
    for i in range(count):
        name, tenant = f"env{i}", f"{ns}-{i}"
        docs.append({"apiVersion": "bbws.io/v1alpha1", "kind": "WordPressEnvironment",
                     "metadata": {"name": name}, "spec": {"tenantId": tenant}})
        envs.append(lifecycle.Env(name, names_for(ns, name, tenant).service))
    # 1,000 creates, one after another, while the operator already patches the first.
    kube.kubectl("apply", "-n", ns, "-f", "-", stdin=yaml.safe_dump_all(docs), env=env,
                 timeout=900)
    return envs


@dataclass
class Batch:
    """How one batch of environments applied at once went."""

    count: int
    took: float = 0.0
    active: int = 0
    failed: list[str] = field(default_factory=list)
    most_provisioning: float = 0.0
    times: list[float] = field(default_factory=list)


def phase_counts(run: Run) -> dict[str, float]:
    """Environments by phase, all namespaces, from the operator's `wpenv_environments`."""
    url = f"http://127.0.0.1:{run.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as answer:
        text = answer.read().decode()
    return {sample.labels["phase"]: sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples if sample.name == "wpenv_environments"}


def finished(env: dict[str, str], ns: str) -> dict[str, tuple[str, float | None]]:
    """Every environment of `ns`: its phase and when it became Active (status, epoch s)."""
    out = kube.kubectl("get", "wpenv", "-n", ns, "-o", "jsonpath={range .items[*]}"
                       "{.metadata.name} {.status.phase} {.status.provisioning.finishedAt}"
                       "{'\\n'}{end}", env=env).stdout
    found: dict[str, tuple[str, float | None]] = {}
    for line in out.splitlines():
        name, phase, at = [*line.split(" "), "", ""][:3]
        when = datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp() if at else None
        found[name] = (phase, when)
    return found


def provision(run: Run, env: dict[str, str], ns: str, count: int, *, timeout: float,
              present: int) -> tuple[Batch, list[lifecycle.Env]]:
    """Apply `count` at once; poll phases, the provisioning gauge and RSS until all settle.

    A small batch is polled with kubectl (times to 2 s). A large one is counted from the
    operator's phase gauge, and each environment's time read from its status
    (`provisioning.finishedAt`, to the second) at the end: listing 1,000 objects (4 MB)
    every two seconds kept the API server busy and slowed what it measures.
    """
    batch = Batch(count)
    started, wall = time.monotonic(), time.time()
    envs = apply(env, ns, count)
    done: dict[str, float] = {}
    last_pull = started
    while time.monotonic() - started < timeout:
        now = time.monotonic() - started
        if count <= SMALL_BATCH:
            seen = phases(env, ns)
            for name, phase in seen.items():
                if phase == "Active" and name not in done:
                    done[name] = now
            active, failed = len(done), sum(p == "Failed" for p in seen.values())
        else:
            counted = phase_counts(run)
            active = int(counted.get("Active", 0)) - present
            failed = int(counted.get("Failed", 0))
        batch.most_provisioning = max(batch.most_provisioning,
                                      run.gauge("wpenv_provisions_running"))
        run.rss.append((present + active, run.rss_mb()))
        if active + failed >= count:
            break
        if time.monotonic() - last_pull > 60:
            run.pull()
            last_pull = time.monotonic()
        time.sleep(POLL)
    batch.took = time.monotonic() - started
    seen_at = finished(env, ns)
    batch.failed = sorted(n for n, (phase, _) in seen_at.items() if phase == "Failed")
    if count > SMALL_BATCH:
        done = {n: at - wall for n, (phase, at) in seen_at.items()
                if phase == "Active" and at is not None}
    batch.active, batch.times = len(done), sorted(done.values())
    run.pull()
    return batch, envs


def idle(run: Run, envs: int, interval: float, passes: int) -> dict[str, float]:
    """RSS and AWS reads per environment and interval, by API, over idle whole intervals."""
    time.sleep(min(interval, 30))  # let passes already under way finish
    start = time.time()
    time.sleep(interval * passes)
    end = time.time()
    run.pull()
    window = [e for e in run.journal if start <= e.time < end]
    by_api = collections.Counter(f"{e.service}:{e.action}" for e in reads(window))
    per = {api: n / envs / passes for api, n in sorted(by_api.items())}
    total = sum(per.values())
    run.idle.append((envs, run.rss_mb(), total * envs))
    writes = len(window) - sum(by_api.values())
    print(f"idle, {envs} environment(s), {passes} x {interval:.0f}s: RSS "
          f"{run.rss_mb():.0f} MB; {total:.2f} AWS reads per environment per interval, "
          f"{writes} writes in all", flush=True)
    for api, n in per.items():
        print(f"    {api:<55} {n:6.2f}")
    return per


def _call(entry: Entry) -> Call:
    """A journal entry as the limits see it (its ids stand for its parameters)."""
    params = dict(entry.ids)
    if entry.service == "elasticloadbalancing":
        params["Version"] = ELBV2_VERSION
    return Call(entry.service, entry.action, params)


def peak_rates(entries: Sequence[Entry], endpoint: str) -> None:
    """Each family's busiest second over the run, against its published rate."""
    limiter = Limiter(DEFAULT_LIMITS)
    seconds: dict[tuple[str, ...], collections.Counter[int]] = collections.defaultdict(
        collections.Counter)
    sizes: dict[tuple[str, ...], tuple[float, float]] = {}
    for entry in entries:
        call = _call(entry)
        for limit in limiter.applicable(call):
            key = limit.key(call)
            seconds[key][int(entry.time)] += 1
            sizes[key] = (limit.capacity, limit.refill)
    print("busiest second per API family (calls) against its limit (burst / per second):")
    rows = sorted(seconds.items(), key=lambda kv: -max(kv[1].values()) / sizes[kv[0]][1])
    for key, counter in rows[:25]:
        capacity, refill = sizes[key]
        busiest = max(counter.values())
        sustained = max(_window(counter, 10)) / 10
        print(f"    {':'.join(key):<60} {busiest:5d} in 1s, {sustained:6.1f}/s over 10s;"
              f" limit {capacity:g} / {refill:g}/s")
    injected = aws_fault_state(endpoint)["injected"]
    throttled = {k: v for k, v in injected.items() if k.startswith("throttled")}
    print(f"platform throttling answers over the run: {throttled or 'none'}")


def _window(counter: collections.Counter[int], width: int) -> Iterable[int]:
    """Calls in every `width`-second window that starts at a busy second."""
    for start in counter:
        yield sum(counter.get(start + i, 0) for i in range(width))


def latency(env: dict[str, str], ns: str, envs: Sequence[lifecycle.Env], samples: int) -> None:
    """Spec change to UpdateService, suspend, resume and scale of `samples` environments."""
    results = lifecycle.latencies(lifecycle.Bench(env, ns), envs[:samples])
    print(f"spec change -> ECS UpdateService, {samples} environments, from after kubectl (ms):")
    for op, result in results.items():
        after = sorted(result.from_after)
        if len(after) < 2:
            print(f"    {op:<8} too few: {len(after)}; {result.missed[:3]}")
            continue
        cuts = statistics.quantiles(after, n=100, method="inclusive")
        print(f"    {op:<8} n={len(after):3d} p50 {cuts[49] * 1000:6.0f} "
              f"p95 {cuts[94] * 1000:6.0f} max {after[-1] * 1000:6.0f}"
              + (f"; missed {len(result.missed)}" if result.missed else ""))


def provisioning_calls(run: Run, since: float, until: float, count: int,
                       service: str = "elasticloadbalancing") -> None:
    """AWS calls per environment while the batch provisioned: by family, and one service's
    by operation (the account-level ELBv2 rate is what a batch waits for)."""
    window = [e for e in run.journal if since <= e.time <= until]
    families = collections.Counter(e.service for e in window)
    print(f"AWS calls per environment while {count} provisioned ({len(window)} in all):")
    for name, n in families.most_common():
        print(f"    {name:<28} {n / count:7.2f}")
    ops = collections.Counter(e.action for e in window if e.service == service)
    print(f"  {service} by operation, per environment:")
    for name, n in ops.most_common():
        print(f"    {name:<28} {n / count:7.2f}")
    rate_floor(window, count)


def rate_floor(window: Sequence[Entry], count: int, scale_to: int = 1000) -> None:
    """The least time these calls need at AWS's published rates, whatever the operator
    does: per bucket, the calls beyond its burst over its refill; and the same calls per
    environment for `scale_to` environments (what bounds a large batch)."""
    limiter = Limiter(DEFAULT_LIMITS)
    calls: collections.Counter[tuple[str, ...]] = collections.Counter()
    sizes: dict[tuple[str, ...], tuple[float, float]] = {}
    for entry in window:
        call = _call(entry)
        for limit in limiter.applicable(call):
            if limit.per == "pool":  # one bucket per user pool: it does not add up
                continue
            calls[limit.key(call)] += 1
            sizes[limit.key(call)] = (limit.capacity, limit.refill)

    def floor(key: tuple[str, ...], n: float) -> float:
        capacity, refill = sizes[key]
        return max(0.0, n - capacity) / refill

    rows = sorted(calls, key=lambda k: -floor(k, calls[k] / count * scale_to))
    print(f"least time at the published rates (calls beyond the burst / refill), for these"
          f" {count} and for {scale_to} at the same calls per environment:")
    for key in rows[:6]:
        capacity, refill = sizes[key]
        print(f"    {':'.join(key):<48} {calls[key] / count:5.2f}/env, limit {capacity:g} +"
              f" {refill:g}/s: {floor(key, calls[key]):5.0f}s; at {scale_to}:"
              f" {floor(key, calls[key] / count * scale_to):5.0f}s")


def report_batch(batch: Batch, one: float, limit: int) -> None:
    """The batch against the issue's targets."""
    target = SLACK * batch.count / limit * one
    print(f"{batch.count} applied at once: {batch.active} Active, {len(batch.failed)} Failed"
          f"{' ' + str(batch.failed[:5]) if batch.failed else ''}, in {batch.took:.0f}s; "
          f"at most {batch.most_provisioning:.0f} provisioning at once (limit {limit})")
    if batch.times:
        print(f"    first {batch.times[0]:.0f}s, median {statistics.median(batch.times):.0f}s, "
              f"last {batch.times[-1]:.0f}s; target {target:.0f}s "
              f"(1.3 x {batch.count}/{limit} x {one:.1f}s): "
              f"{'met' if batch.times[-1] <= target else 'MISSED'}", flush=True)


def plot(run: Run, path: Path) -> None:
    """RSS and idle AWS reads per drift interval against the number of environments."""
    pyplot.switch_backend("Agg")  # a file, no display
    figure, (memory, calls) = pyplot.subplots(1, 2, figsize=(11, 4.2))
    memory.plot([a for a, _ in run.rss], [m for _, m in run.rss], ".", markersize=3,
                label="while provisioning")
    memory.plot([n for n, _, _ in run.idle], [m for _, m, _ in run.idle], "o-", label="idle")
    memory.set(xlabel="environments (Active)", ylabel="operator RSS (MB)", title="Memory")
    memory.legend()
    calls.plot([0, *(n for n, _, _ in run.idle)], [0, *(r for _, _, r in run.idle)], "o-")
    calls.set(xlabel="environments", ylabel="AWS reads per drift interval",
              title="Idle AWS reads")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    print(f"plot: {path}")


def trace(run: Run, path: Path) -> None:
    """Ask the traced operator for its live allocations; print the top of them."""
    os.kill(run.pid, signal.SIGUSR1)
    for _ in range(120):
        time.sleep(1)
        if path.exists():
            break
    text = path.read_text() if path.exists() else "(no trace written)"
    print("largest live allocations (tracemalloc):")
    print("\n".join(text.splitlines()[:120]))


def measure(env: dict[str, str], args: argparse.Namespace) -> Run:
    """Everything in order, on the running platform; the operator started here."""
    trace_file = LOCAL / "trace.txt"
    trace_file.unlink(missing_ok=True)
    operator_env = {**env, **FAST, "WPENV_DRIFT_INTERVAL_SECONDS": str(args.drift_interval),
                    "WPENV_MAX_CONCURRENT_PROVISIONS": str(args.limit),
                    # One Cognito user pool per environment: the account's quota (AWS's
                    # default is 1,000, adjustable) raised above what the run applies.
                    "WPENV_USER_POOL_QUOTA": str(args.count + 10),
                    "WPENV_LOG_LEVEL": "WARNING", "WPENV_LOG_FORMAT": "plain",
                    "WPENV_TRACE_FILE": str(trace_file),
                    "WPENV_TRACE_FRAMES": str(args.trace_frames),
                    **dict(pair.split("=", 1) for pair in args.operator_env)}
    module = "bench.traced" if args.trace else "wpenv.operator"
    with running_operator(operator_env, LOCAL / "operator.log", HEALTH_PORT, module) as proc:
        run = Run(proc.pid, HEALTH_PORT + 1, env["AWS_ENDPOINT_URL"], pulled=time.time())
        print(f"operator RSS empty: {run.rss_mb():.0f} MB", flush=True)
        first = new_namespace(env)
        one, _ = provision(run, env, first, 1, timeout=900, present=0)
        yardstick = one.times[0] if one.times else float("nan")
        print(f"one environment: Active in {yardstick:.1f}s; RSS {run.rss_mb():.0f} MB")
        idle(run, 1, args.drift_interval, args.drift_passes)
        many = new_namespace(env)
        timeout = args.timeout or max(900.0, 3 * SLACK * args.count / args.limit * yardstick)
        since = time.time()
        batch, envs = provision(run, env, many, args.count, timeout=timeout, present=1)
        report_batch(batch, yardstick, args.limit)
        provisioning_calls(run, since, time.time(), args.count)
        at_100 = [m for a, m in run.rss if a >= 100]
        if at_100:
            print(f"RSS when 100 were Active (the rest provisioning or queued): "
                  f"{at_100[0]:.0f} MB")
        idle(run, args.count + 1, args.drift_interval, args.drift_passes)
        peak_rates(run.journal, run.endpoint)
        latency(env, many, envs, args.latency_samples)
        if args.trace:
            trace(run, trace_file)
        print(f"operator RSS at the end: {run.rss_mb():.0f} MB", flush=True)
    return run


def main() -> None:
    """Bring a private platform up, measure, plot, tear it down."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--limit", type=int, default=10, help="max concurrent provisions")
    parser.add_argument("--drift-interval", type=float, default=60.0)
    parser.add_argument("--drift-passes", type=int, default=2)
    parser.add_argument("--latency-samples", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds the batch may take (default: 3 x its target, >= 900)")
    parser.add_argument("--trace", action="store_true", help="tracemalloc in the operator")
    parser.add_argument("--trace-frames", type=int, default=8,
                        help="frames per allocation with --trace; 0: no tracemalloc, a"
                             " census of live objects at the end instead")
    parser.add_argument("--operator-env", action="append", default=[], metavar="NAME=VALUE",
                        help="set in the operator's environment only (e.g. PYTHONMALLOC="
                             "malloc), to compare allocator settings in one platform")
    parser.add_argument("--plot", type=Path, default=LOCAL / "scale.png")
    args = parser.parse_args()
    os.environ.update(FAST)
    # A pool with room for them all.
    os.environ[POOL_SIZE_ENV] = str(math.ceil((args.count + 1) / RULES_PER_BALANCER) + 1)
    with private_platform(PORTS, LOCAL) as env:
        run = measure(env, args)
    args.plot.parent.mkdir(parents=True, exist_ok=True)
    plot(run, args.plot)
    summary = {"rss": run.rss, "idle": run.idle}
    (LOCAL / "scale.json").write_text(json.dumps(summary))


if __name__ == "__main__":
    main()
