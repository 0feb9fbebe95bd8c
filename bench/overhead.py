"""Benchmark: the operator's overhead over the AWS and SQL calls it makes.

The same comparison twice, in one run, against one emulator and one MariaDB: with 1
environment (a few rounds, their median), then with N (default 20). Each time:

- **operator**: from `kubectl apply` of the N manifests to all N Active, through the
  operator (simulated rollout delay 0, IAM propagation 0: nothing waits for the platform);
- **straight line**: the same AWS requests and SQL statements, taken from the platform's
  request journal and MariaDB's general log of that operator run, replayed by a script
  in the same order and with the same concurrency (one lane per environment, as many at
  once as the operator provisions; bench/replay.py), under other tenant ids.

It prints both times and their ratio (the target: at most 1.25). With `--profile` it runs
the N environments once more with the operator under pyinstrument (bench/profiled.py) and
prints where the operator's own time goes. Prints figures; asserts nothing. Runs its own
platform on its own ports (`--port-base`) and tears it down.

    .venv/bin/python -m bench.overhead [--count 20] [--rounds 3] [--profile] [--port-base 26000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pymysql
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bench import replay
from bench.platform import new_namespace, private_platform
from tests.platform import kube, stack
from tests.platform.journal import read_journal
from tests.platform.mariadb import CA_BUNDLE_ENV
from wpenv import mysql
from wpenv.api.models import GROUP, VERSION
from wpenv.aws import Clients
from wpenv.settings import Settings

# Nothing the platform simulates waits: the calls themselves are what is compared. The
# data plane is off as in the tests: its WordPress tasks would make a rollout wait for PHP
# to start and answer health checks, and their SQL would count as the operator's.
# The simulator steps every 50 ms (0.5 s by default): with a delay of 0 a rollout is
# done at its next step, and the replay never waits for one.
PLATFORM = {"WPENV_SIM_DELAY_SECONDS": "0", "WPENV_SIM_PERIOD_SECONDS": "0.05",
            "WPENV_IAM_PROPAGATION_SECONDS": "0", "WPENV_JOURNAL_EXCHANGES": "1",
            "WPENV_DATA_PLANE": "off"}
OPERATOR = {"WPENV_USER_POOL_QUOTA": "1000"}
TARGET = 1.25
TIMEOUT = 900.0


def ports(base: int) -> dict[str, str]:
    """The platform's ports, laid out as the tests lay theirs out (tests/conftest.py)."""
    return {"WPENV_ETCD_PORT": str(base + 790), "WPENV_ETCD_PEER_PORT": str(base + 800),
            "WPENV_APISERVER_PORT": str(base + 3443), "WPENV_MOTO_PORT": str(base + 2000),
            "WPENV_MYSQL_PORT": str(base + 306)}


def admin() -> pymysql.connections.Connection[Any]:
    """The platform's MariaDB administrator (the general log is the server's)."""
    return pymysql.connect(host=os.environ["MYSQL_HOST"], port=int(os.environ["MYSQL_TCP_PORT"]),
                           user=os.environ["MYSQL_USER"], password=os.environ["MYSQL_PWD"],
                           autocommit=True, ssl_ca=os.environ[CA_BUNDLE_ENV],
                           ssl_verify_identity=True)


def general_log(on: bool) -> None:
    """Log every statement to mysql.general_log (emptied when switched on), or stop."""
    conn = admin()
    with conn, conn.cursor() as cur:
        if on:
            cur.execute("SET GLOBAL log_output = 'TABLE'")
            cur.execute("SET GLOBAL general_log = 'OFF'")
            cur.execute("TRUNCATE TABLE mysql.general_log")
        cur.execute(f"SET GLOBAL general_log = '{'ON' if on else 'OFF'}'")


def sql_calls(since: float, until: float) -> list[replay.SqlCall]:
    """The general log's rows between two moments, but this process's own."""
    conn = admin()
    with conn, conn.cursor() as cur:
        cur.execute("SELECT CONNECTION_ID()")
        (own,) = cur.fetchone() or (0,)
        cur.execute(
            "SELECT UNIX_TIMESTAMP(event_time), thread_id, command_type, argument "
            "FROM mysql.general_log WHERE event_time BETWEEN FROM_UNIXTIME(%s) "
            "AND FROM_UNIXTIME(%s) ORDER BY event_time", (since, until))
        rows = cur.fetchall()
    return [replay.SqlCall(float(at), int(thread), str(command),
                           arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg))
            for at, thread, command, arg in rows if int(thread) != own]


def active_after(env: dict[str, str], namespace: str, names: set[str],
                 started: float) -> float:
    """Seconds from `started` until every named environment is Active, seen on a watch.

    A watch (kubectl's, one line per change), not a poll: polling at 10 Hz added up to
    0.1 s to the operator's figure, about a sixth of one environment's provisioning here."""
    remaining = TIMEOUT - (time.monotonic() - started)
    watch = subprocess.Popen(  # noqa: S603  (kubectl, with our own arguments)
        [kube.KUBECTL, "get", "wpenv", "-n", namespace, "--watch",
         f"--request-timeout={max(1, int(remaining))}s",
         "-o", "jsonpath={.metadata.name} {.status.phase}{\"\\n\"}"],
        env=env, stdout=subprocess.PIPE, text=True)
    active: set[str] = set()
    try:
        for line in watch.stdout or ():
            name, _, phase = line.strip().partition(" ")
            if phase == "Active":
                active.add(name)
                if names <= active:
                    break
    finally:
        watch.kill()
        watch.wait()
    if not names <= active:
        raise TimeoutError(f"not Active after {TIMEOUT:.0f}s: {sorted(names - active)}")
    return time.monotonic() - started


def throttled(metrics_port: int) -> None:
    """Print the operations AWS throttled most (botocore backed off and retried each)."""
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as answer:
        text = answer.read().decode()
    counts = sorted(((s.value, f"{s.labels['service']}:{s.labels['operation']}")
                     for family in text_string_to_metric_families(text)
                     for s in family.samples if s.name == "wpenv_aws_throttled_total"),
                    reverse=True)
    shown = ", ".join(f"{name} {value:.0f}" for value, name in counts[:6]) or "none"
    print(f"  throttled attempts: {sum(v for v, _ in counts):.0f} ({shown})")


def through_operator(env: dict[str, str], count: int, log: Path, port: int,
                     command: list[str] | None = None) -> tuple[float, float, float, list[str]]:
    """Apply `count` environments at once; (seconds to all Active, since, until, tenants)."""
    namespace = new_namespace(env)
    tag = uuid.uuid4().hex[:4]
    tenants = [f"o{tag}{i:03d}" for i in range(count)]
    docs: list[dict[str, Any]] = [
        {"apiVersion": f"{GROUP}/{VERSION}", "kind": "WordPressEnvironment",
         "metadata": {"name": f"env{i:03d}"}, "spec": {"tenantId": tenant}}
        for i, tenant in enumerate(tenants)]
    proc = kube.start_operator({**env, **OPERATOR}, log, port,
                               command or [sys.executable, "-m", "wpenv.operator"])
    try:
        # kubectl's first request for a new API group fetches its discovery, and the API
        # server answers 429 "storage is (re)initializing" until its watch cache of a new
        # CRD is ready (kubectl retries after 1 s, twice: about 2 s on a fresh platform).
        # Both done here with a server-side dry run, so the figure is the apply and the
        # operator.
        kube.kubectl("get", "wpenv", "-n", namespace, env=env)
        kube.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-",
                     stdin=yaml.safe_dump(docs[0]), env=env)
        since = time.time()
        started = time.monotonic()
        kube.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump_all(docs),
                     env=env)
        print(f"  kubectl apply returned after {time.monotonic() - started:.2f}s")
        seconds = active_after(env, namespace, {d["metadata"]["name"] for d in docs}, started)
        until = time.time()
        throttled(port + 1)
    finally:
        kube.stop_operator(proc, timeout=60)
    return seconds, since, until, tenants


def straight_line(endpoint: str, since: float, until: float, tenants: list[str],
                  settings: Settings) -> tuple[float, replay.Replayer, replay.Plan]:
    """Replay what the operator sent between `since` and `until`; seconds taken."""
    entries = [e for e in read_journal(endpoint, since, exchanges=True, timeout=120)
               if e.time <= until]
    planned = replay.plan(entries, sql_calls(since, until), tenants)
    server = mysql.master_server(settings, Clients(settings))
    renamed = {tenant: "r" + tenant[1:] for tenant in tenants}
    replayer = replay.Replayer(endpoint, settings.region, server, renamed)
    seconds = replayer.run(planned.lanes, settings.max_concurrent_provisions)
    return seconds, replayer, planned


def compare(env: dict[str, str], local: Path, count: int, port: int) -> float:
    """One comparison: operator vs straight line for `count` environments; the ratio."""
    general_log(True)
    operator_seconds, since, until, tenants = through_operator(
        env, count, local / f"operator-overhead-{count}.log", port)
    general_log(False)
    settings = Settings()
    line_seconds, replayer, planned = straight_line(
        env["AWS_ENDPOINT_URL"], since, until, tenants, settings)
    tally = replayer.tally
    ratio = operator_seconds / line_seconds
    print(f"{count:>3} environment(s): operator {operator_seconds:6.2f}s, straight line "
          f"{line_seconds:6.2f}s, ratio {ratio:.2f} (target <= {TARGET}); replayed "
          f"{tally.aws} AWS calls and {tally.sql} SQL commands in {len(planned.lanes)} "
          f"lane(s), {planned.unplaced} unplaced, {tally.retried} retried after throttling, "
          f"{tally.diverged} answered otherwise than recorded; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    calls = sorted((c for lane in planned.lanes.values() for c in lane), key=lambda c: c.time)
    last = max((c.entry.done or c.time) if c.entry else c.time for c in calls)
    print(f"  apply -> first call {calls[0].time - since:.2f}s; last answer -> all Active seen "
          f"{since + operator_seconds - last:.2f}s")
    first = min(planned.lanes.values(), key=lambda lane: lane[0].time)
    print(f"  the first environment's lane, idle between calls ({len(first)} calls, "
          f"{first[-1].time - first[0].time:.2f}s from first to last):")
    for seconds, label in replay.idle_gaps(first):
        print(f"    {seconds:6.2f}s  {label}")
    return ratio


def profile(env: dict[str, str], local: Path, count: int, port: int) -> None:
    """The operator under pyinstrument for `count` environments; print the profile."""
    out = local / "overhead-profile.txt"
    out.unlink(missing_ok=True)
    command = [sys.executable, "-m", "bench.profiled", str(out)]
    seconds, *_ = through_operator(env, count, local / "operator-profiled.log", port, command)
    print(f"profiled: {count} environment(s) Active after {seconds:.2f}s (sampling slows it)")
    deadline = time.monotonic() + 60
    while not out.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    print(f"profile of the operator's threads ({out}):")
    print("\n".join(out.read_text().splitlines()[:120]) if out.exists() else "(none written)")


def main() -> None:
    """Bring a private platform up, compare for 1 and N environments, tear it down."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--port-base", type=int, default=26000)
    parser.add_argument("--rounds", type=int, default=3,
                        help="comparisons of 1 environment (its figure is their median)")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--profile-only", action="store_true", help="skip the comparisons")
    args = parser.parse_args()
    os.environ.update(PLATFORM)
    local = stack.REPO / ".local" / f"bench-overhead-{args.port_base}"
    health = args.port_base + 80
    with private_platform(ports(args.port_base), local) as env:
        if not args.profile_only:
            # One environment takes a few seconds, so one busy moment of a shared machine
            # moves its ratio a lot: the median of a few rounds is its figure.
            ratios = [compare(env, local, 1, health) for _ in range(max(1, args.rounds))]
            print(f"  1 environment: median ratio {statistics.median(ratios):.2f} of "
                  f"{len(ratios)} round(s) ({', '.join(f'{r:.2f}' for r in ratios)})",
                  flush=True)
            compare(env, local, args.count, health)
        if args.profile or args.profile_only:
            profile(env, local, args.count, health)


if __name__ == "__main__":
    main()
