"""The Argo CD health check of WordPressEnvironment over its testdata (tests/argocd.py
runs it the way Argo CD does), and the argocd-cm patch that installs it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.argocd import ARGOCD, HEALTH_DIR, HEALTH_LUA, load_cases, run_health

CONFIGMAP_PATCH = ARGOCD / "argocd-cm-health.yaml"
CONFIGMAP_KEY = "resource.customizations.health.bbws.io_WordPressEnvironment"


def test_health_test_has_enough_cases_and_covers_every_testdata_file() -> None:
    """Every testdata file is a case, so none silently drops out of the checks."""
    cases = load_cases()
    assert len(cases) >= 8
    referenced = sorted(case["inputPath"] for case in cases)
    on_disk = sorted(f"testdata/{path.name}" for path in (HEALTH_DIR / "testdata").iterdir())
    assert referenced == on_disk


@pytest.mark.parametrize("case", load_cases(), ids=lambda case: Path(str(case["inputPath"])).stem)
def test_health_case(case: dict[str, Any]) -> None:
    """health.lua gives the status and message health_test.yaml expects."""
    resource = yaml.safe_load((HEALTH_DIR / case["inputPath"]).read_text())
    assert run_health(resource) == {
        "status": case["healthStatus"]["status"],
        "message": case["healthStatus"].get("message", ""),
    }


def test_configmap_patch_carries_the_lua_file_byte_for_byte() -> None:
    """The argocd-cm patch is what the cluster runs: it must not drift from health.lua."""
    patch = yaml.safe_load(CONFIGMAP_PATCH.read_text(encoding="utf-8"))
    assert patch["kind"] == "ConfigMap"
    assert patch["metadata"]["name"] == "argocd-cm"
    assert patch["data"][CONFIGMAP_KEY].encode("utf-8") == HEALTH_LUA.read_bytes()
