"""AWS faults end to end: throttling and 5xx on 30 % of the calls, through the operator.

Twenty environments are applied with `kubectl apply` while the platform fails 30 % of the
AWS calls (ThrottlingException, 500, 503: tests/platform/chaos.py); every one must reach
Active and none may fail. The backoff must show where a platform team looks: a condition
reason (AwsRetrying) and the metrics page (wpenv_aws_throttled_total, the
controller-runtime reconcile counters). Then all twenty are deleted under the same fault
rate, and every archive is read back and checked against its manifest.

The operator here is one of the test's own, with a short engine backoff (the retry
settings, not the count of environments, keep the wall time within CI's); the session's
operator is paused meanwhile so that only this one works on the manifests.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import SPARE_OPERATOR_HEALTH_PORT
from tests.e2e import envs
from tests.platform import kube
from tests.platform.chaos import aws_fault_state, reset_aws_faults, set_aws_faults
from wpenv import reasons

pytestmark = pytest.mark.e2e

COUNT = 20
FAULT_RATE = 0.3
SEED = 20261201
# The engine's backoff for this operator: the first retry after 0.5 s, never more than 4 s
# (production: 2 s and 120 s). botocore's own retries are left as they are.
TUNED = {"WPENV_RETRY_BASE_SECONDS": "0.5", "WPENV_RETRY_MAX_SECONDS": "4",
         "WPENV_USER_POOL_QUOTA": "1000"}
TIMEOUT = 900.0


@pytest.fixture
def faulty_operator(
    operator: subprocess.Popen[bytes], operator_env: dict[str, str], local: Path
) -> Iterator[int]:
    """An operator of this test's own (tuned backoff); its metrics port."""
    with envs.sole_operator(operator, operator_env, local / "operator-faults.log",
                            SPARE_OPERATOR_HEALTH_PORT, **TUNED):
        yield SPARE_OPERATOR_HEALTH_PORT + 1


@pytest.fixture
def faults(platform: dict[str, str]) -> Iterator[str]:
    """The platform's AWS endpoint; its faults back to the start-up settings afterwards."""
    url = platform["AWS_ENDPOINT_URL"]
    reset_aws_faults(url)
    try:
        yield url
    finally:
        reset_aws_faults(url)


def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample on the operator's metrics page."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def total(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
          **labels: str) -> float:
    """The sum of a family's samples whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def listed(platform: dict[str, str], namespace: str) -> list[envs.Obj]:
    """Every environment of the namespace, as `kubectl get -o json` shows it."""
    out = kube.kubectl("get", "wpenv", "-n", namespace, "-o", "json", env=platform).stdout
    items: list[envs.Obj] = json.loads(out)["items"]
    return items


def watch_until(
    platform: dict[str, str], namespace: str, done: Any, seen: Counter[str], what: str
) -> list[envs.Obj]:
    """Poll the namespace until `done(items)`; count each (type, reason) seen; no Failed."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        items = listed(platform, namespace)
        for obj in items:
            for cond in (obj.get("status") or {}).get("conditions") or []:
                seen[f"{cond.get('type')}/{cond.get('reason')}"] += 1
            assert envs.phase(obj) != "Failed", json.dumps(obj.get("status"))
        if done(items):
            return items
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(1.0)


def verified(manifest_uri: str) -> dict[str, Any]:
    """The archive's manifest, each artefact read back and its sha256 compared."""
    s3 = boto3.client("s3")

    def body(bucket: str, key: str) -> bytes:
        data: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return data

    bucket, _, key = manifest_uri.removeprefix("s3://").partition("/")
    manifest: dict[str, Any] = json.loads(body(bucket, key))
    for artefact in ("database", "files", "users"):
        entry = manifest[artefact]
        assert hashlib.sha256(body(bucket, entry["key"])).hexdigest() == entry["sha256"], entry
    return manifest


def test_twenty_environments_ride_out_thirty_percent_faults_both_ways(
    platform: dict[str, str], faulty_operator: int, faults: str, namespace: str
) -> None:
    docs: list[dict[str, Any]] = [{"apiVersion": "bbws.io/v1alpha1", "kind": "WordPressEnvironment",
             "metadata": {"name": f"f{i}"}, "spec": {"tenantId": envs.tenant()}}
            for i in range(COUNT)]
    set_aws_faults(faults, rate=FAULT_RATE, seed=SEED)
    seen: Counter[str] = Counter()
    started = time.monotonic()
    kube.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump_all(docs),
                 env=platform)
    watch_until(platform, namespace,
                lambda items: len(items) == COUNT and all(
                    envs.phase(o) == "Active" for o in items), seen, "all Active")
    provisioned = time.monotonic() - started
    injected = Counter(aws_fault_state(faults)["injected"])
    samples = scrape(faulty_operator)

    assert {"fault ThrottlingException", "fault InternalFailure",
            "fault ServiceUnavailable"} <= set(injected), injected
    assert any(key.endswith(f"/{reasons.AWS_RETRYING}") for key in seen), seen
    # botocore's retries: every throttled attempt; the engine's: calls that still failed
    # after them, and the passes that ended in a requeue (not an error: it is routine).
    assert total(samples, "wpenv_aws_throttled_total") > 0
    failed = sum(total(samples, "wpenv_aws_calls_total", outcome=code)
                 for code in ("InternalFailure", "ServiceUnavailable", "ThrottlingException",
                              "Throttling", "TooManyRequestsException", "RequestLimitExceeded"))
    assert failed > 0
    assert total(samples, "controller_runtime_reconcile_total", result="requeue_after") > 0
    assert total(samples, "controller_runtime_reconcile_errors_total") == 0, "no pass failed"

    started = time.monotonic()
    kube.kubectl("delete", "wpenv", "--all", "-n", namespace, "--wait=false", env=platform)
    manifests: dict[str, str] = {}
    deadline = time.monotonic() + TIMEOUT
    while len(manifests) < COUNT:
        for doc in docs:
            name = doc["metadata"]["name"]
            for event in envs.events(platform, namespace, name):
                if event["reason"] == reasons.DEPROVISIONED and name not in manifests:
                    manifests[name] = next(
                        w for w in event["message"].replace(",", " ").split()
                        if w.endswith("manifest.json"))
        assert time.monotonic() < deadline, f"deprovisioned: {sorted(manifests)}"
        time.sleep(2.0)
    watch_until(platform, namespace, lambda items: not items, seen, "all gone")
    deprovisioned = time.monotonic() - started
    injected_total = Counter(aws_fault_state(faults)["injected"])
    for name, uri in manifests.items():
        doc = next(d for d in docs if d["metadata"]["name"] == name)
        assert verified(uri)["tenantId"] == doc["spec"]["tenantId"]
        assert envs.tagged_resources(namespace, name) == [], name
    print(f"\n{COUNT} environments at fault rate {FAULT_RATE}: Active after "
          f"{provisioned:.0f}s, deprovisioned after {deprovisioned:.0f}s; injected "
          f"{dict(injected_total)}; throttled attempts "
          f"{total(scrape(faulty_operator), 'wpenv_aws_throttled_total'):.0f}, AWS calls "
          f"failed after botocore's retries {failed:.0f}, requeued passes "
          f"{total(samples, 'controller_runtime_reconcile_total', result='requeue_after'):.0f};"
          f" "
          f"conditions seen {dict(seen)}")
