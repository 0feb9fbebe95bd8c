"""AWS faults end to end: throttling and 5xx on 30 % of the calls, through the operator.

Twenty environments are applied with `kubectl apply` while the platform fails 30 % of the
AWS calls (ThrottlingException, 500, 503: tests/platform/chaos.py); every one must reach
Active and none may fail. The backoff must show where a platform team looks: a condition
reason (AwsRetrying) and the metrics page (wpenv_aws_throttled_total, the
controller-runtime reconcile counters). Then all twenty are deleted under the same fault
rate, and every archive is read back and checked against its manifest.

The operator is the session's, whose engine backoff is short (tests/e2e/conftest.py: the
retry settings, not the count of environments, keep the wall time within CI's); its
metrics are read as differences over the test, since other tests share them.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
import urllib.request
from collections import Counter
from typing import Any

import boto3
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import OPERATOR_HEALTH_PORT
from tests.e2e import envs
from tests.platform import kube
from tests.platform.chaos import aws_fault_state, set_aws_faults
from wpenv import reasons

pytestmark = pytest.mark.e2e

COUNT = 20
FAULT_RATE = 0.3
SEED = 20261201
METRICS_PORT = OPERATOR_HEALTH_PORT + 1
TIMEOUT = 1200.0  # each way; measured on two shared cores: see the README



Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(since: Samples | None = None) -> Samples:
    """Every sample on the operator's metrics page (less its value in `since`)."""
    url = f"http://127.0.0.1:{METRICS_PORT}/metrics"
    with urllib.request.urlopen(url, timeout=5) as answer:
        text = answer.read().decode()
    now = {(s.name, frozenset(s.labels.items())): s.value
           for family in text_string_to_metric_families(text) for s in family.samples}
    return {key: value - (since or {}).get(key, 0.0) for key, value in now.items()}


def total(samples: Samples, name: str, **labels: str) -> float:
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


@pytest.mark.timeout(2 * TIMEOUT + 120)
def test_twenty_environments_ride_out_thirty_percent_faults_both_ways(
    platform: dict[str, str], operator: subprocess.Popen[bytes], endpoint: str, namespace: str
) -> None:
    docs: list[dict[str, Any]] = [{"apiVersion": "bbws.io/v1alpha1", "kind": "WordPressEnvironment",
             "metadata": {"name": f"f{i}"}, "spec": {"tenantId": envs.tenant()}}
            for i in range(COUNT)]
    before = scrape()
    set_aws_faults(endpoint, rate=FAULT_RATE, seed=SEED)
    seen: Counter[str] = Counter()
    started = time.monotonic()
    kube.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump_all(docs),
                 env=platform)
    watch_until(platform, namespace,
                lambda items: len(items) == COUNT and all(
                    envs.phase(o) == "Active" for o in items), seen, "all Active")
    provisioned = time.monotonic() - started
    injected = Counter(aws_fault_state(endpoint)["injected"])
    samples = scrape(before)

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
    injected_total = Counter(aws_fault_state(endpoint)["injected"])
    for name, uri in manifests.items():
        doc = next(d for d in docs if d["metadata"]["name"] == name)
        assert verified(uri)["tenantId"] == doc["spec"]["tenantId"]
        assert envs.tagged_resources(namespace, name) == [], name
    print(f"\n{COUNT} environments at fault rate {FAULT_RATE}: Active after "
          f"{provisioned:.0f}s, deprovisioned after {deprovisioned:.0f}s; injected "
          f"{dict(injected_total)}; throttled attempts "
          f"{total(scrape(before), 'wpenv_aws_throttled_total'):.0f}, AWS calls "
          f"failed after botocore's retries {failed:.0f}, requeued passes "
          f"{total(samples, 'controller_runtime_reconcile_total', result='requeue_after'):.0f};"
          f" "
          f"conditions seen {dict(seen)}")
