"""The install (manifests/): every overlay renders, the API server accepts it, RBAC is tight.

Rendering needs only kubectl; the dry-run and the `auth can-i` checks ask the local
kube-apiserver, which runs real admission (Pod Security included) and real RBAC. That the
ClusterRole is *enough* is shown elsewhere: the end-to-end suite runs the operator with a
token of this service account (tests/e2e/conftest.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.platform import kube
from wpenv import manifests

MANIFESTS = kube.REPO / "manifests"
OVERLAYS = sorted(p.parent for p in (MANIFESTS / "overlays").glob("*/kustomization.yaml"))
TREES = [MANIFESTS / "base", *OVERLAYS]
KINDS = {
    "Namespace", "CustomResourceDefinition", "ServiceAccount", "ClusterRole",
    "ClusterRoleBinding", "ConfigMap", "Deployment", "PersistentVolume",
    "PersistentVolumeClaim", "Service", "Role", "RoleBinding",
}

# What the operator does, as `kubectl auth can-i` arguments, each cluster-wide.
MAY = [
    ("list", "wordpressenvironments.bbws.io"),
    ("watch", "wordpressenvironments.bbws.io"),
    ("patch", "wordpressenvironments.bbws.io"),
    ("patch", "wordpressenvironments.bbws.io", "--subresource=status"),
    ("create", "events"),
    ("list", "customresourcedefinitions.apiextensions.k8s.io"),
    ("watch", "customresourcedefinitions.apiextensions.k8s.io"),
]
# What it must never be able to do, however it is compromised.
MUST_NOT = [
    ("get", "secrets"),
    ("list", "secrets"),
    ("watch", "secrets"),
    ("delete", "namespaces"),
    ("create", "namespaces"),
    ("create", "clusterroles.rbac.authorization.k8s.io"),
    ("patch", "clusterroles.rbac.authorization.k8s.io"),
    ("escalate", "clusterroles.rbac.authorization.k8s.io"),
    ("bind", "clusterroles.rbac.authorization.k8s.io"),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
    ("create", "roles.rbac.authorization.k8s.io"),
    ("create", "rolebindings.rbac.authorization.k8s.io"),
    ("impersonate", "users"),
    ("create", "serviceaccounts/token"),
    ("create", "pods"),
    ("delete", "wordpressenvironments.bbws.io"),
    ("update", "customresourcedefinitions.apiextensions.k8s.io"),
    ("delete", "events"),
]


def render(tree: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize` of a tree, as objects."""
    out = kube.kubectl("kustomize", str(tree), env={}).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def _one(objects: list[dict[str, Any]], kind: str, prefix: str = "") -> dict[str, Any]:
    found = [
        o for o in objects if o["kind"] == kind and o["metadata"]["name"].startswith(prefix)
    ]
    assert len(found) == 1, f"{len(found)} {kind} {prefix}"
    return found[0]


def _settings(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """The settings ConfigMap (its name has kustomize's content hash appended)."""
    return _one(objects, "ConfigMap", "wpenv-operator-settings-")


@pytest.mark.parametrize("tree", TREES, ids=lambda p: p.name)
def test_every_tree_renders_the_whole_install(tree: Path) -> None:
    objects = render(tree)
    assert {o["kind"] for o in objects} >= KINDS
    settings = _settings(objects)
    assert set(settings["data"]) == set(manifests.defaults())
    pod = _one(objects, "Deployment")["spec"]["template"]["spec"]
    refs = {e["configMapRef"]["name"] for e in pod["containers"][0]["envFrom"]
            if "configMapRef" in e}
    assert settings["metadata"]["name"] in refs  # kustomize's hashed name, followed


@pytest.mark.parametrize("tree", TREES, ids=lambda p: p.name)
def test_the_crd_is_the_generated_one(tree: Path) -> None:
    """One source: what kustomize installs is crds/, unchanged but for the install label."""
    installed = _one(render(tree), "CustomResourceDefinition")
    generated = yaml.safe_load(kube.CRD.read_text())
    assert installed["spec"] == generated["spec"]


def test_production_marks_every_placeholder() -> None:
    """Nothing of the local platform leaks into production; placeholders say REPLACE_."""
    objects = render(MANIFESTS / "overlays" / "production")
    account = _one(objects, "ServiceAccount")
    role = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert role.startswith("arn:aws:iam::REPLACE_")
    data = _settings(objects)["data"]
    for name in ("WPENV_VPC_ID", "WPENV_DB_HOST", "WPENV_LOAD_BALANCER_ARNS",
                 "WPENV_FILE_SYSTEM_ID"):
        assert data[name].startswith("REPLACE_"), name
    assert "127.0.0.1" not in yaml.safe_dump_all(objects)


def test_every_overlay_passes_a_server_side_dry_run(platform: dict[str, str]) -> None:
    """The API server validates and admits every object, the pod template under the
    namespace's restricted Pod Security Standard (a violation would be a warning)."""
    kube.install_operator_identity(platform)  # a dry run cannot create the namespace
    for overlay in OVERLAYS:
        result = kube.kubectl(
            "apply", "--server-side", "--dry-run=server", "-k", str(overlay), env=platform
        )
        lines = result.stdout.strip().splitlines()
        assert len(lines) == len(render(overlay))
        assert all(line.endswith("(server dry run)") for line in lines), result.stdout
        assert "PodSecurity" not in result.stderr, result.stderr


# The coordination Leases (wpenv/leases.py): in the operator's namespace, and only there.
LEASES = "leases.coordination.k8s.io"
MAY_IN_OWN_NAMESPACE = [(verb, LEASES) for verb in ("get", "list", "create", "update", "delete")]
MUST_NOT_ELSEWHERE = [
    (verb, LEASES, f"--namespace={namespace}")
    for verb in ("get", "update", "delete")
    for namespace in ("kube-system", "default")
] + [("watch", LEASES, f"--namespace={kube.OPERATOR_NAMESPACE}")]


def _can_i(env: dict[str, str], *check: str) -> bool:
    scope = () if any(arg.startswith("--namespace=") for arg in check) else ("--all-namespaces",)
    answer = kube.kubectl(
        "auth", "can-i", *check, *scope, f"--as={kube.OPERATOR_USER}",
        env=env, check=False,
    )
    assert answer.stdout.strip() in {"yes", "no"}, answer.stderr
    return answer.stdout.strip() == "yes"


@pytest.fixture(scope="module")
def identity(platform: dict[str, str]) -> dict[str, str]:
    """The base's ServiceAccount and ClusterRole, applied to the API server."""
    kube.install_operator_identity(platform)
    return platform


@pytest.mark.parametrize("check", MAY, ids=" ".join)
def test_service_account_may_do_what_the_operator_does(
    identity: dict[str, str], check: tuple[str, ...]
) -> None:
    assert _can_i(identity, *check)


@pytest.mark.parametrize("check", MUST_NOT, ids=" ".join)
def test_service_account_must_not(identity: dict[str, str], check: tuple[str, ...]) -> None:
    assert not _can_i(identity, *check)


@pytest.mark.parametrize("check", MAY_IN_OWN_NAMESPACE, ids=" ".join)
def test_service_account_may_coordinate_in_its_namespace(
    identity: dict[str, str], check: tuple[str, ...]
) -> None:
    assert _can_i(identity, *check, f"--namespace={kube.OPERATOR_NAMESPACE}")
    assert not _can_i(identity, *check)  # cluster-wide: no


@pytest.mark.parametrize("check", MUST_NOT_ELSEWHERE, ids=" ".join)
def test_service_account_must_not_touch_other_leases(
    identity: dict[str, str], check: tuple[str, ...]
) -> None:
    assert not _can_i(identity, *check)
