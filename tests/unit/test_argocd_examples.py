"""The Argo CD examples (manifests/argocd/): they point at what this repository ships.

Argo CD itself does not run here; what it would do with these objects is reproduced with
the tools it uses: kustomize (through kubectl) for the operator's Application, a glob over
the tenants' layout for the git directory generator, and the models for each manifest.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import Any

import yaml

from tests.platform import kube
from wpenv.api.models import GROUP, parse_spec

ARGOCD = kube.REPO / "manifests" / "argocd"
TENANTS_REPO = ARGOCD / "tenants-repo"
CRD_NAME = f"wordpressenvironments.{GROUP}"


def load(name: str) -> dict[str, Any]:
    """One example object."""
    obj: dict[str, Any] = yaml.safe_load((ARGOCD / name).read_text())
    return obj


def render(tree: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize` of a tree, as objects."""
    out = kube.kubectl("kustomize", str(tree), env={}).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def test_operator_application_installs_the_production_overlay() -> None:
    app = load("operator-application.yaml")
    assert app["kind"] == "Application"
    source = app["spec"]["source"]
    overlay = kube.REPO / source["path"]
    assert source["path"] == "manifests/overlays/production"
    objects = render(overlay)
    namespaces = {o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"}
    assert namespaces == {app["spec"]["destination"]["namespace"]}
    assert "resources-finalizer.argocd.argoproj.io" not in app["metadata"].get("finalizers", [])


def test_operator_application_patch_keeps_the_crd_from_being_pruned(tmp_path: Path) -> None:
    """Argo CD adds spec.source.kustomize.patches to the overlay; kustomize does the same."""
    app = load("operator-application.yaml")
    patches = app["spec"]["source"]["kustomize"]["patches"]
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        # kustomize takes no absolute path to a kustomization, only a relative one.
        "resources": [os.path.relpath(kube.REPO / app["spec"]["source"]["path"], tmp_path)],
        "patches": patches,
    }))
    crds = [o for o in render(tmp_path) if o["kind"] == "CustomResourceDefinition"]
    assert [c["metadata"]["name"] for c in crds] == [CRD_NAME]
    options = crds[0]["metadata"]["annotations"]["argocd.argoproj.io/sync-options"]
    assert set(options.split(",")) == {"Delete=false", "Prune=false"}
    # The patch replaced no annotation the install sets itself.
    plain = next(o for o in render(kube.REPO / app["spec"]["source"]["path"])
                 if o["kind"] == "CustomResourceDefinition")
    assert not plain["metadata"].get("annotations")


def _generated_folders(appset: dict[str, Any]) -> list[Path]:
    """The folders the git directory generator would list in the tenants' layout."""
    (generator,) = appset["spec"]["generators"]
    patterns = [d["path"] for d in generator["git"]["directories"]]
    folders = [p for p in TENANTS_REPO.rglob("*") if p.is_dir()]
    return sorted(
        f for f in folders
        if any(fnmatch.fnmatch(f.relative_to(TENANTS_REPO).as_posix(), pattern)
               and f.relative_to(TENANTS_REPO).as_posix().count("/") == pattern.count("/")
               for pattern in patterns)
    )


def test_applicationset_makes_one_application_per_tenant_folder() -> None:
    appset = load("tenants-applicationset.yaml")
    folders = _generated_folders(appset)
    assert [f.name for f in folders] == ["acme", "globex"]
    template = appset["spec"]["template"]
    assert template["metadata"]["name"] == "wpenv-{{.path.basename}}"
    assert template["spec"]["source"]["path"] == "{{.path.path}}"
    assert appset["spec"]["goTemplate"] is True
    # No deletion in Argo CD ever deprovisions a tenant (retiring one is deliberate).
    assert appset["spec"]["syncPolicy"]["preserveResourcesOnDeletion"] is True
    assert template["spec"]["syncPolicy"]["automated"]["prune"] is False


def test_every_tenant_folder_holds_only_what_the_project_allows() -> None:
    """Each folder syncs: only WordPressEnvironments, each a valid spec, tenant ids unique."""
    appset = load("tenants-applicationset.yaml")
    project = load("tenants-project.yaml")
    assert appset["spec"]["template"]["spec"]["project"] == project["metadata"]["name"]
    allowed = {(k["group"], k["kind"]) for k in project["spec"]["namespaceResourceWhitelist"]}
    assert allowed == {(GROUP, "WordPressEnvironment")}
    (destination,) = project["spec"]["destinations"]
    namespace = appset["spec"]["template"]["spec"]["destination"]["namespace"]
    tenants = []
    for folder in _generated_folders(appset):
        rendered = namespace.replace("{{.path.basename}}", folder.name)
        assert fnmatch.fnmatch(rendered, destination["namespace"]), rendered
        docs = [d for p in sorted(folder.glob("*.yaml"))
                for d in yaml.safe_load_all(p.read_text()) if d]
        assert docs, folder
        for doc in docs:
            assert (doc["apiVersion"].split("/")[0], doc["kind"]) in allowed
            tenants.append(parse_spec(doc["spec"]).tenant_id)
    assert len(tenants) == len(set(tenants))
