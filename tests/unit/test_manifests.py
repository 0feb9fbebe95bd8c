"""The install's settings file: generated from Settings, complete, and read back unchanged."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from wpenv import manifests
from wpenv.settings import Settings

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "manifests" / "base"
OVERLAYS = sorted(p.parent for p in (REPO / "manifests" / "overlays").glob("*/kustomization.yaml"))
# A variable the package reads itself, outside Settings.
_ENVIRON_READ = re.compile(r"""os\.environ(?:\.get\(|\[)\s*["'](WPENV_\w+)["']""")


def parse_env(path: Path) -> dict[str, str]:
    """An env file as kustomize reads it: `NAME=value` lines, `#` comments."""
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            found[name] = value
    return found


def test_settings_file_is_in_sync_with_the_model() -> None:
    assert manifests.ENV_PATH.read_text() == manifests.render(), (
        "manifests/base/settings.env is stale: run `python -m wpenv.manifests`"
    )
    assert manifests.main(["--check"]) == 0


def test_settings_file_lists_exactly_the_settings() -> None:
    listed = parse_env(manifests.ENV_PATH)
    expected = {manifests.env_name(name) for name in Settings.model_fields}
    assert set(listed) == expected | set(manifests.PROCESS_VARIABLES)


def test_every_variable_the_package_reads_is_listed() -> None:
    """A WPENV_* read with os.environ, outside Settings, is in the file too."""
    read = {
        name
        for module in (REPO / "wpenv").rglob("*.py")
        for name in _ENVIRON_READ.findall(module.read_text())
    }
    assert read, "the pattern no longer finds the entry point's reads"
    assert read <= set(parse_env(manifests.ENV_PATH))


def test_every_setting_has_a_comment() -> None:
    text = manifests.ENV_PATH.read_text()
    for name in parse_env(manifests.ENV_PATH):
        assert re.search(rf"^# .+\n(?:# .*\n)*{name}=", text, re.MULTILINE), name


def test_the_file_reads_back_as_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the ConfigMap holds parses to exactly the model's defaults, but for what the
    install sets on purpose (INSTALL_VALUES)."""
    for name, value in parse_env(manifests.ENV_PATH).items():
        monkeypatch.setenv(name, value)
    defaults = {
        name: info.get_default(call_default_factory=True)
        for name, info in Settings.model_fields.items()
    }
    install = {"coordination": "leases"}
    assert {manifests.env_name(name) for name in install} == set(manifests.INSTALL_VALUES)
    assert Settings().model_dump() == {**defaults, **install}


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_overlays_set_only_known_settings(overlay: Path) -> None:
    """A misspelt name in an overlay would be ignored by the operator: refuse it here."""
    assert set(parse_env(overlay / "settings.env")) <= set(parse_env(manifests.ENV_PATH))


def _container() -> dict[str, Any]:
    deployment = yaml.safe_load((BASE / "deployment.yaml").read_text())
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def test_deployment_ports_and_mount_match_the_default_settings() -> None:
    container, settings = _container(), manifests.defaults()
    ports = {port["name"]: str(port["containerPort"]) for port in container["ports"]}
    assert ports == {"health": settings["WPENV_HEALTH_PORT"],
                     "metrics": settings["WPENV_METRICS_PORT"]}
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    assert mounts["efs"] == settings["WPENV_EFS_MOUNT_PATH"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        # kopf's liveness endpoint, as wpenv/operator/__main__.py starts it.
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}


def test_env_value_writes_lists_as_settings_reads_them() -> None:
    assert manifests.env_value(["a", "b"]) == "a,b"
    assert manifests.env_value([]) == ""
    assert manifests.env_value(True) == "true"
    assert manifests.env_value(Path("/mnt/efs")) == "/mnt/efs"
