"""Several operator processes on one API server (WPENV_COORDINATION=leases).

- A shard's standby takes over when its leader dies mid-provision, and finishes it with
  exactly one of each resource.
- Two shards (label selectors) share the global limits: never more provisions at once than
  the limit, and never two tenants on one load balancer place.

Every operator here runs with its own service account's token (the install's RBAC,
tests/platform/kube.py), as the session's operator does; the environments carry the
label that the session's operator leaves alone (envs.SHARD_LABEL), so only the processes
under test act on them, during the test and after.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import SPARE_OPERATOR_HEALTH_PORT
from tests.e2e import envs
from tests.platform import kube
from tests.platform.aws import clients_for, ensure_load_balancer_pool
from tests.platform.faults import clear_faults
from tests.platform.fidelity.elb_quotas import set_quotas
from tests.platform.journal import read_refusals
from wpenv.leases import PURPOSE
from wpenv.operator.throttle import SLOT_PURPOSE
from wpenv.reconcilers.listener_rule import QUOTA_CODES
from wpenv.settings import Settings

pytestmark = pytest.mark.e2e

LEASE_SECONDS = 3  # short, so that a standby takes over within seconds
COORDINATED = {
    "WPENV_COORDINATION": "leases",
    "WPENV_LEASE_DURATION_SECONDS": str(LEASE_SECONDS),
    "WPENV_USER_POOL_QUOTA": "1000",  # the emulator has no pool quota (see conftest)
}
SHARD_LABEL = envs.SHARD_LABEL


def _port(index: int) -> int:
    """Health port of the test's index-th operator (its metrics port is the next one)."""
    return SPARE_OPERATOR_HEALTH_PORT + 2 * index


def _leases(env: Mapping[str, str], purpose: str) -> list[dict[str, Any]]:
    """The operator namespace's Leases of one purpose, as the admin reads them."""
    out = kube.kubectl("get", "leases", "-n", kube.OPERATOR_NAMESPACE, "-l",
                       f"{PURPOSE}={purpose}", "-o", "json", env=env).stdout
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return items


def _leader(env: Mapping[str, str], shard: str) -> str:
    """The holder of a shard's leader Lease ("" while none)."""
    for lease in _leases(env, "leader"):
        if lease["metadata"]["name"] == f"wpenv-leader-{shard}":
            return str(lease["spec"].get("holderIdentity") or "")
    return ""


def _wait(what: str, check: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _apply(env: Mapping[str, str], namespace: str, shard: str, specs: Mapping[str, Any]) -> None:
    """One `kubectl apply` of environments (name -> spec), labelled for `shard`."""
    docs = [
        {"apiVersion": "bbws.io/v1alpha1", "kind": "WordPressEnvironment",
         "metadata": {"name": name, "labels": {SHARD_LABEL: shard}}, "spec": spec}
        for name, spec in specs.items()
    ]
    kube.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump_all(docs), env=env)


def _shard(base: Mapping[str, str], shard: str) -> dict[str, str]:
    """An operator process of `shard`: its name, and the environments labelled for it."""
    return {**base, "WPENV_SHARD_NAME": shard,
            "WPENV_SHARD_SELECTOR": f"{SHARD_LABEL}={shard}"}


def test_the_standby_takes_over_when_the_leader_dies_mid_provision(
    platform: dict[str, str], namespace: str, local: Path, operator_env: dict[str, str],
) -> None:
    shard = f"ha-{uuid.uuid4().hex[:6]}"
    env = _shard({**operator_env, **COORDINATED}, shard)
    tenant = envs.tenant()
    started: list[subprocess.Popen[bytes]] = []
    try:
        leader = kube.start_operator(env, local / f"{shard}-leader.log", _port(0))
        started.append(leader)
        _wait("the first replica to lead", lambda: f"_{leader.pid}_" in _leader(env, shard))
        standby = kube.start_operator(env, local / f"{shard}-standby.log", _port(1))
        started.append(standby)  # live (its probe answers) while it stands by
        time.sleep(LEASE_SECONDS)
        assert f"_{leader.pid}_" in _leader(env, shard), "the leader keeps its lease"

        _apply(platform, namespace, shard, {"ha": {"tenantId": tenant}})
        _wait("the database to be recorded", lambda: (envs.get(platform, namespace, "ha")
              .get("status", {}).get("resources", {}).get("databaseName")))
        os.killpg(leader.pid, signal.SIGKILL)
        leader.wait(10)
        envs.wait_ready(platform, namespace, "ha")
        assert f"_{standby.pid}_" in _leader(env, shard)
    finally:
        for proc in started:
            kube.stop_operator(proc)
    envs.assert_one_of_each(namespace, "ha", tenant)
    obj = envs.get(platform, namespace, "ha")
    assert envs.phase(obj) == "Active"
    assert obj["status"]["provisioning"]["startedAt"]


# --- two shards, one set of limits -----------------------------------------------------------

ENVIRONMENTS = 30
LIMIT = 4  # provisions at once, across both shards
RULES = 15  # per load balancer: the two of the test's pool hold exactly the 30 tenants


@dataclass
class Samples:
    """What the test saw over time: slot Leases held, the most tenants per load balancer."""

    slots: list[int] = field(default_factory=list)
    placed: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)


def _live(lease: Mapping[str, Any]) -> bool:
    """Held and renewed within its duration (an earlier test's may have expired)."""
    spec = lease["spec"]
    if not spec.get("holderIdentity") or not spec.get("renewTime"):
        return False
    renewed = datetime.fromisoformat(spec["renewTime"].replace("Z", "+00:00"))
    return datetime.now(UTC) < renewed + timedelta(seconds=spec["leaseDurationSeconds"])


def _sample(env: Mapping[str, str], namespace: str, samples: Samples) -> None:
    """One look at the Leases and the statuses."""
    samples.slots.append(sum(_live(lease) for lease in _leases(env, SLOT_PURPOSE)))
    out = kube.kubectl("get", "wpenv", "-n", namespace, "-o", "json", env=env).stdout
    statuses = [obj.get("status") or {} for obj in json.loads(out)["items"]]
    now = Counter(str((s.get("resources") or {}).get("loadBalancerArn"))
                  for s in statuses if (s.get("resources") or {}).get("loadBalancerArn"))
    for arn, count in now.items():
        samples.placed[arn] = max(samples.placed[arn], count)


def most_at_once(items: list[dict[str, Any]]) -> int:
    """The most provisions that ran at once, from each one's recorded start and finish.

    The operator records startedAt just after it took a slot and finishedAt just before it
    gives it back (second precision: a start in the second another finished follows it).
    Exact, unlike sampling the phases, which kopf writes when a pass ends.
    """
    edges = sorted(
        (moment, step)
        for obj in items
        for moment, step in ((obj["status"]["provisioning"]["startedAt"], 1),
                             (obj["status"]["provisioning"]["finishedAt"], -1))
    )  # at one moment, -1 (a finish) sorts before +1 (a start)
    running = most = 0
    for _moment, step in edges:
        running += step
        most = max(most, running)
    return most


@contextmanager
def _watching(env: Mapping[str, str], namespace: str) -> Iterator[Samples]:
    """Sample in the background while the block runs."""
    samples, done = Samples(), threading.Event()

    def run() -> None:
        while not done.wait(0.5):
            try:
                _sample(env, namespace, samples)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                samples.errors.append(str(exc))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        done.set()
        thread.join(30)


@pytest.fixture
def own_pool(platform: dict[str, str]) -> Iterator[list[str]]:
    """Two fresh load balancers, RULES each (on the platform), that nobody else uses."""
    endpoint = platform["AWS_ENDPOINT_URL"]
    settings = Settings()
    tag = uuid.uuid4().hex[:6]
    arns = ensure_load_balancer_pool(
        clients_for(endpoint), settings.private_subnet_ids, settings.alb_security_group_id,
        names=(f"sh-{tag}-1", f"sh-{tag}-2"),
    )
    set_quotas(endpoint, rules=RULES)
    yield arns
    clear_faults(endpoint)


def test_two_shards_share_the_provisioning_limit_and_the_load_balancer_places(
    platform: dict[str, str], namespace: str, local: Path, operator_env: dict[str, str],
    own_pool: list[str],
) -> None:
    run = uuid.uuid4().hex[:6]
    shards = {f"a{run}": ENVIRONMENTS // 2, f"b{run}": ENVIRONMENTS - ENVIRONMENTS // 2}
    common = {**operator_env, **COORDINATED,
              # Takeover speed does not matter here; a loaded machine must not lose leases.
              "WPENV_LEASE_DURATION_SECONDS": "10",
              "WPENV_MAX_CONCURRENT_PROVISIONS": str(LIMIT),
              "WPENV_LOAD_BALANCER_ARNS": ",".join(own_pool),
              "WPENV_RULES_PER_LOAD_BALANCER": str(RULES)}
    before = read_refusals(platform["AWS_ENDPOINT_URL"])
    started: list[subprocess.Popen[bytes]] = []
    began = time.monotonic()
    try:
        for index, shard in enumerate(shards):
            started.append(kube.start_operator(
                _shard(common, shard), local / f"shard-{shard}.log", _port(index)))
        with _watching(platform, namespace) as samples:
            for shard, count in shards.items():
                _apply(platform, namespace, shard, {
                    f"{shard}-{i}": {"tenantId": envs.tenant(), "replicas": 1}
                    for i in range(count)
                })
            for shard, count in shards.items():
                for i in range(count):
                    envs.wait_ready(platform, namespace, f"{shard}-{i}", timeout=600)
    finally:
        for proc in started:
            kube.stop_operator(proc)
    took = time.monotonic() - began
    print(f"{ENVIRONMENTS} environments on two shards: Active in {took:.0f}s")

    assert len(samples.slots) > 10 and not samples.errors, samples.errors
    assert max(samples.slots) == LIMIT, "the limit was reached, and never passed"
    assert samples.placed == dict.fromkeys(own_pool, RULES), "at most RULES per load balancer"
    after = read_refusals(platform["AWS_ENDPOINT_URL"])
    refused = {k: n - before.get(k, 0) for k, n in after.items()
               if k.startswith("fidelity ") and k.rpartition(" ")[2] in QUOTA_CODES}
    assert not any(refused.values()), f"a place was given twice: {refused}"

    out = kube.kubectl("get", "wpenv", "-n", namespace, "-o", "json", env=platform).stdout
    items = json.loads(out)["items"]
    placed = Counter(obj["status"]["resources"]["loadBalancerArn"] for obj in items)
    assert placed == dict.fromkeys(own_pool, RULES)
    assert all(envs.phase(obj) == "Active" for obj in items)
    assert most_at_once(items) == LIMIT, "the limit was reached, and never passed"
