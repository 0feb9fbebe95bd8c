"""The API as a platform team meets it: kubectl apply, get, explain, scale, and refusals.

Everything here goes through kubectl against the real kube-apiserver; the operator runs as
its own process.
"""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import pytest
import yaml

from tests.platform import kube

pytestmark = pytest.mark.e2e

SAMPLE = kube.REPO / "manifests" / "samples" / "acme.yaml"


def manifest(name: str, **spec: Any) -> str:
    """A WordPressEnvironment manifest as YAML text."""
    body = {
        "apiVersion": "bbws.io/v1alpha1",
        "kind": "WordPressEnvironment",
        "metadata": {"name": name},
        "spec": spec,
    }
    return yaml.safe_dump(body)


def get(env: dict[str, str], namespace: str, name: str) -> dict[str, Any]:
    """The object as JSON."""
    out = kube.kubectl("get", "wpenv", name, "-n", namespace, "-o", "json", env=env).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def wait_for(env: dict[str, str], namespace: str, name: str, path: str, value: str) -> None:
    """Poll a jsonpath until it has the value (at most 30 s)."""
    deadline = time.monotonic() + 30
    seen = ""
    while time.monotonic() < deadline:
        seen = kube.kubectl(
            "get", "wpenv", name, "-n", namespace, "-o", f"jsonpath={{{path}}}", env=env
        ).stdout
        if seen == value:
            return
        time.sleep(0.3)
    raise AssertionError(f"{path} is {seen!r}, not {value!r}")


def test_sample_is_accepted_and_shown_with_printer_columns(
    platform: dict[str, str], operator: subprocess.Popen[bytes], namespace: str
) -> None:
    kube.kubectl("apply", "-n", namespace, "-f", str(SAMPLE), env=platform)
    wait_for(platform, namespace, "acme", ".status.observedGeneration", "1")
    obj = get(platform, namespace, "acme")
    assert obj["status"]["phase"] in {"PendingProvisioning", "Provisioning", "Active"}
    ready = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"]
    assert ready["observedGeneration"] == 1
    assert "bbws.io/finalizer" in obj["metadata"]["finalizers"]
    # Server-side defaults from the schema are visible to everyone, not just the operator.
    assert obj["spec"]["routing"]["removeRuleWhenSuspended"] is True

    table = kube.kubectl("get", "wpenv", "-n", namespace, env=platform).stdout
    header = table.splitlines()[0].split()
    assert header == ["NAME", "PHASE", "READY", "REPLICAS", "URL", "AGE"]
    assert "acme" in table
    wide = kube.kubectl("get", "wpenv", "-n", namespace, "-o", "wide", env=platform).stdout
    assert wide.splitlines()[0].split()[-4:] == ["TENANT", "DESIRED", "QUEUE", "REASON"]


def test_operator_does_not_touch_fields_it_does_not_own(
    platform: dict[str, str], operator: subprocess.Popen[bytes], namespace: str
) -> None:
    body = yaml.safe_load(manifest("owned", tenantId="owned"))
    body["metadata"]["labels"] = {"team": "web"}
    body["metadata"]["annotations"] = {"example.com/note": "keep me"}
    kube.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(body), env=platform)
    wait_for(platform, namespace, "owned", ".status.observedGeneration", "1")
    obj = get(platform, namespace, "owned")
    assert obj["metadata"]["labels"] == {"team": "web"}
    assert obj["metadata"]["annotations"]["example.com/note"] == "keep me"
    assert obj["metadata"]["generation"] == 1  # the operator wrote status only
    assert obj["spec"]["tenantId"] == "owned"


def test_delete_releases_the_finalizer(
    platform: dict[str, str], operator: subprocess.Popen[bytes], namespace: str
) -> None:
    kube.kubectl("apply", "-n", namespace, "-f", "-", stdin=manifest("gone", tenantId="gone"),
                 env=platform)
    wait_for(platform, namespace, "gone", ".status.observedGeneration", "1")
    kube.kubectl("delete", "wpenv", "gone", "-n", namespace, "--timeout=60s", env=platform)
    left = kube.kubectl("get", "wpenv", "gone", "-n", namespace, check=False, env=platform)
    assert left.returncode != 0
    assert "NotFound" in left.stderr


def test_kubectl_explain_documents_the_spec(platform: dict[str, str]) -> None:
    out = kube.kubectl("explain", "wpenv.spec", env=platform).stdout
    for field in ("tenantId", "replicas", "cpu", "memory", "routing", "identity",
                  "deletionPolicy", "suspended"):
        assert field in out
    assert "DNS label of at most 32 characters" in out
    nested = kube.kubectl("explain", "wpenv.spec.routing.pathPrefix", env=platform).stdout
    assert "Path prefix on the tenant's load balancer" in " ".join(nested.split())


def test_kubectl_scale_uses_the_scale_subresource(
    platform: dict[str, str], namespace: str
) -> None:
    kube.kubectl("apply", "-n", namespace, "-f", "-", stdin=manifest("scaled", tenantId="s"),
                 env=platform)
    kube.kubectl("scale", "wpenv/scaled", "-n", namespace, "--replicas=4", env=platform)
    assert get(platform, namespace, "scaled")["spec"]["replicas"] == 4
    refused = kube.kubectl("scale", "wpenv/scaled", "-n", namespace, "--replicas=11",
                           check=False, env=platform)
    assert refused.returncode != 0
    assert "spec.replicas" in refused.stderr


# Refused manifests, by category, are in test_bad_input.py (data: bad_manifests.py).


def test_image_references_of_every_registry_form_are_accepted(
    platform: dict[str, str], namespace: str
) -> None:
    digest = "sha256:" + "0123456789abcdef" * 4
    images = ["docker.io/library/wordpress:6.5-php8.2-apache", f"registry:5000/a/b@{digest}",
              "123456789012.dkr.ecr.eu-west-1.amazonaws.com/wp:1"]
    for number, image in enumerate(images):
        body = manifest(f"image-{number}", tenantId=f"image{number}", image=image)
        kube.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-", stdin=body,
                     env=platform)

