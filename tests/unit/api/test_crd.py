"""The CRD generator: in sync with crds/, structural, and carrying the promised rules."""

from __future__ import annotations

from typing import Any

from wpenv.api import crd


def _walk(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found.extend(_walk(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_walk(value))
    return found


def _version() -> dict[str, Any]:
    version: dict[str, Any] = crd.build_crd()["spec"]["versions"][0]
    return version


def test_crds_directory_is_in_sync_with_the_models() -> None:
    assert crd.CRD_PATH.read_text() == crd.render(), (
        "crds/ is stale: run `python -m wpenv.api.crd`"
    )


def test_check_mode_reports_in_sync() -> None:
    assert crd.main(["--check"]) == 0


def test_schema_is_structural() -> None:
    schema = _version()["schema"]["openAPIV3Schema"]
    for node in _walk(schema):
        assert "$ref" not in node and "anyOf" not in node and "title" not in node
        if "properties" in node:
            assert node.get("type") == "object"
    spec = schema["properties"]["spec"]
    for name, prop in spec["properties"].items():
        assert prop.get("description"), f"spec.{name} has no description"
        assert "type" in prop, f"spec.{name} has no type"


def test_cel_rules_are_present() -> None:
    spec = _version()["schema"]["openAPIV3Schema"]["properties"]["spec"]
    rules = [r["rule"] for r in spec["x-kubernetes-validations"]]
    assert any("self.cpu == 256" in r for r in rules)
    assert any("autoscaling.minReplicas" in r for r in rules)
    tenant_rules = spec["properties"]["tenantId"]["x-kubernetes-validations"]
    assert tenant_rules == [{"rule": "self == oldSelf", "message": "tenantId is immutable"}]
    auto = spec["properties"]["autoscaling"]["x-kubernetes-validations"]
    assert auto[0]["rule"] == "self.minReplicas <= self.maxReplicas"


def test_subresources_and_printer_columns() -> None:
    version = _version()
    assert version["subresources"]["status"] == {}
    assert version["subresources"]["scale"]["specReplicasPath"] == ".spec.replicas"
    names = [c["name"] for c in version["additionalPrinterColumns"] if "priority" not in c]
    assert names == ["Phase", "Ready", "Replicas", "URL", "Age"]


def test_enums_and_defaults_reach_the_schema() -> None:
    spec = _version()["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert spec["deletionPolicy"]["enum"] == ["Delete", "Retain"]
    assert spec["deletionPolicy"]["default"] == "Delete"
    assert spec["cpu"]["enum"][0] == 256
    assert spec["identity"]["default"]["groups"] == ["Admin", "Editor", "Viewer"]
    conditions = _version()["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"][
        "conditions"
    ]
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
