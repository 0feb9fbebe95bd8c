"""The image's command line runs the operator: /healthz answers and /metrics is served.

There is no container runtime here. The test reads the final stage of the Dockerfile and
runs exactly its ENTRYPOINT and CMD, with this environment's Python standing in for the
image's (the package is the same, installed from the same pins), and with the
environment the container would get: the image's ENV, then what the local overlay's
Deployment takes from its ConfigMaps and Secret (resolved from `kubectl kustomize`, as
the kubelet resolves envFrom), then what the platform generated and the overlay cannot
know (ids of the shared infrastructure, its ports, the service account's kubeconfig).
The Dockerfile's HEALTHCHECK is run against that process too.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import prometheus_client
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import SPARE_OPERATOR_HEALTH_PORT
from tests.dockerfile import healthcheck_command, image_command, image_env
from tests.platform import kube
from wpenv import metrics

pytestmark = pytest.mark.e2e

LOCAL_OVERLAY = kube.REPO / "manifests" / "overlays" / "local"
# The image's interpreter, on its PATH (/opt/wpenv/bin, the virtual environment).
IMAGE_PYTHON = "python"


def here(argv: list[str]) -> list[str]:
    """The same command with this environment's Python for the image's."""
    assert argv[0] == IMAGE_PYTHON, f"the image runs {argv[0]}, not its Python"
    return [sys.executable, *argv[1:]]


def overlay_env() -> dict[str, str]:
    """What the local overlay's Deployment puts in the container's environment."""
    out = kube.kubectl("kustomize", str(LOCAL_OVERLAY), env={}).stdout
    objects = [doc for doc in yaml.safe_load_all(out) if doc]
    by_name = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    found: dict[str, str] = {}
    for source in container["envFrom"]:
        if "configMapRef" in source:
            found.update(by_name[("ConfigMap", source["configMapRef"]["name"])]["data"])
        else:
            data = by_name[("Secret", source["secretRef"]["name"])]["data"]
            found.update({k: base64.b64decode(v).decode() for k, v in data.items()})
    for variable in container.get("env", []):
        found[variable["name"]] = variable["value"]
    return found


@pytest.fixture
def image_operator(
    operator_env: dict[str, str], namespace: str, local: Path
) -> Iterator[int]:
    """The image's command running; yields its health port (metrics on the next one).

    It watches only the test's empty namespace (WPENV_NAMESPACES, a setting of the
    operator), so it never competes with the suite's operator over an environment.
    """
    env = {**image_env(), **overlay_env(), **operator_env, "WPENV_NAMESPACES": namespace,
           # A shard of its own: another process may still hold (or have left to expire)
           # the default shard's leader Lease, and this one would stand by behind it.
           "WPENV_SHARD_NAME": f"image-{namespace}"}
    proc = kube.start_operator(env, local / "image-operator.log", SPARE_OPERATOR_HEALTH_PORT,
                               command=here(image_command()))
    try:
        yield SPARE_OPERATOR_HEALTH_PORT
    finally:
        kube.stop_operator(proc)


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.status, answer.read().decode()


def exported_families() -> set[str]:
    """The metric families wpenv.metrics defines (as the exposition format names them)."""
    return {
        family.name
        for value in vars(metrics).values()
        if isinstance(value, prometheus_client.metrics.MetricWrapperBase)
        for family in value.describe()
    }


def _leading_health(port: int, timeout: float = 60) -> tuple[int, str]:
    """/healthz once the process leads its shard (until then it answers "standby")."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = _get(f"http://127.0.0.1:{port}/healthz")
        if body.strip() != "standby" or time.monotonic() > deadline:
            return status, body
        time.sleep(0.5)


def test_the_image_command_is_healthy_and_serves_metrics(image_operator: int) -> None:
    status, body = _leading_health(image_operator)
    assert status == 200
    assert json.loads(body)["ready"] is True, body  # the operator's own probe (handlers)

    status, body = _get(f"http://127.0.0.1:{image_operator + 1}/metrics")
    assert status == 200
    served = {family.name for family in text_string_to_metric_families(body)}
    defined = exported_families()
    assert defined, "wpenv.metrics defines no metric"
    assert defined <= served, sorted(defined - served)

    # The Dockerfile's HEALTHCHECK, against the same process, with the same environment.
    check = subprocess.run(
        here(healthcheck_command()), capture_output=True, text=True, timeout=30, check=False,
        env={"WPENV_HEALTH_PORT": str(image_operator), "PATH": "/usr/bin:/bin"},
    )
    assert check.returncode == 0, check.stderr


def test_the_healthcheck_fails_when_nothing_answers() -> None:
    """The HEALTHCHECK could fail: on a port where no operator listens, it does."""
    check = subprocess.run(
        here(healthcheck_command()), capture_output=True, text=True, timeout=30, check=False,
        env={"WPENV_HEALTH_PORT": str(SPARE_OPERATOR_HEALTH_PORT), "PATH": "/usr/bin:/bin"},
    )
    assert check.returncode != 0
