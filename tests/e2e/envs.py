"""What an end-to-end test does as a platform team would: kubectl apply, get, wait.

Shared by the end-to-end tests so each reads as the steps a person takes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import yaml

from tests.platform import kube
from wpenv.plan import TAG_ENVIRONMENT

Obj = dict[str, Any]
# Environments a test hands to operators of its own (shards, tests/e2e/test_replicas.py)
# carry this label; the session's operator leaves them alone (its WPENV_SHARD_SELECTOR).
SHARD_LABEL = "shard.e2e.bbws.io/name"


def tenant() -> str:
    """A fresh tenant id: tests share one emulator and one MariaDB."""
    return f"e{uuid.uuid4().hex[:8]}"


def apply(env: dict[str, str], namespace: str, name: str, **spec: Any) -> None:
    """`kubectl apply` a WordPressEnvironment with this spec."""
    body = {"apiVersion": "bbws.io/v1alpha1", "kind": "WordPressEnvironment",
            "metadata": {"name": name}, "spec": spec}
    kube.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(body), env=env)


def patch(env: dict[str, str], namespace: str, name: str, spec: dict[str, Any]) -> None:
    """`kubectl patch --type merge` the spec."""
    kube.kubectl("patch", "wpenv", name, "-n", namespace, "--type", "merge",
                 "-p", json.dumps({"spec": spec}), env=env)


def get(env: dict[str, str], namespace: str, name: str) -> Obj:
    """`kubectl get -o json` of one environment."""
    out = kube.kubectl("get", "wpenv", name, "-n", namespace, "-o", "json", env=env).stdout
    obj: Obj = json.loads(out)
    return obj


def wait_ready(env: dict[str, str], namespace: str, name: str, timeout: int = 180) -> None:
    """`kubectl wait --for=condition=Ready`."""
    kube.kubectl("wait", f"wpenv/{name}", "-n", namespace, "--for=condition=Ready",
                 f"--timeout={timeout}s", env=env, timeout=timeout + 10)


def provision(env: dict[str, str], namespace: str, name: str, **spec: Any) -> Obj:
    """Apply, wait for Ready and get: an environment to start a test from."""
    apply(env, namespace, name, **spec)
    wait_ready(env, namespace, name)
    return get(env, namespace, name)


def wait_for(
    env: dict[str, str], namespace: str, name: str, check: Callable[[Obj], bool],
    timeout: float = 120, what: str = "the condition",
) -> Obj:
    """Poll `kubectl get` until `check(obj)` holds; fail with the last status seen."""
    deadline = time.monotonic() + timeout
    obj: Obj = {}
    while time.monotonic() < deadline:
        obj = get(env, namespace, name)
        if check(obj):
            return obj
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}: {json.dumps(obj.get('status'))}")


def condition(obj: Obj, type_: str) -> dict[str, Any]:
    """The status condition of that type ({} when absent)."""
    conditions = (obj.get("status") or {}).get("conditions") or []
    found: dict[str, Any] = next((c for c in conditions if c.get("type") == type_), {})
    return found


def phase(obj: Obj) -> str | None:
    """status.phase."""
    value = (obj.get("status") or {}).get("phase")
    return str(value) if value is not None else None


def events(env: dict[str, str], namespace: str, name: str) -> list[dict[str, Any]]:
    """The Events posted on the environment."""
    out = kube.kubectl("get", "events", "-n", namespace, "--field-selector",
                       f"involvedObject.name={name}", "-o", "json", env=env).stdout
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return items


def tagged(key: str, value: str) -> list[str]:
    """ARNs of every resource carrying the tag `key=value`, as the tagging API lists them."""
    found = boto3.client("resourcegroupstaggingapi").get_resources(
        TagFilters=[{"Key": key, "Values": [value]}]
    )
    return [str(m["ResourceARN"]) for m in found["ResourceTagMappingList"]]


def tagged_resources(namespace: str, name: str, *, ecs: bool = False) -> list[str]:
    """ARNs of the environment's tagged resources; without ECS's unless `ecs`.

    ECS keeps deleted services and task definitions as INACTIVE (with their tags) for a
    while, as AWS does, so "nothing left" checks leave them out and look at ECS directly.
    """
    arns = tagged(TAG_ENVIRONMENT, f"{namespace}.{name}")
    return arns if ecs else [arn for arn in arns if ":ecs:" not in arn]


def arn_kind(arn: str) -> str:
    """`service:type[:name]` of an ARN: one per kind, except secrets (one per name)."""
    parts = arn.split(":")
    kind = f"{parts[2]}:{parts[5].split('/')[0]}"
    if parts[2] == "secretsmanager":  # the DB secret and the OIDC client secret
        return f"{kind}:{parts[6].rsplit('-', 1)[0]}"
    return kind


def assert_one_of_each(namespace: str, name: str, tenant: str) -> None:
    """Exactly one resource of each kind for the environment (after a crash mid-way)."""
    kinds = sorted(arn_kind(arn) for arn in tagged_resources(namespace, name, ecs=True))
    assert len(kinds) == len(set(kinds)), f"duplicates: {kinds}"
    services = boto3.client("ecs").list_services(
        cluster=os.environ["WPENV_CLUSTER_NAME"])["serviceArns"]
    assert sum(arn.endswith(f"/wpenv-{tenant}") for arn in services) == 1
    groups = boto3.client("elbv2").describe_target_groups()["TargetGroups"]
    assert sum(g["TargetGroupName"] == f"wp-{tenant}" for g in groups) == 1
@contextmanager
def sole_operator(
    session_operator: subprocess.Popen[bytes], operator_env: dict[str, str], log: Path,
    health_port: int, **settings: str,
) -> Iterator[subprocess.Popen[bytes]]:
    """An operator of the test's own (its `settings`), the session's paused meanwhile.

    Both watch every namespace; with the session's stopped (SIGSTOP) only this one works
    on what the test applies. Its metrics answer on `health_port + 1`. Delete what the test
    made after this returns: the session's operator, resumed, acts on the events it missed,
    and would provision an object that came and went while it slept.
    """
    log.unlink(missing_ok=True)
    mine = kube.start_operator({**operator_env, **settings}, log, health_port)
    session_operator.send_signal(signal.SIGSTOP)
    try:
        yield mine
    finally:
        kube.stop_operator(mine)
        session_operator.send_signal(signal.SIGCONT)
