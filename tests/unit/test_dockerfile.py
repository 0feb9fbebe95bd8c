"""The Dockerfile agrees with the install and keeps its promises (hadolint runs in make lint).

Pinned bases, a non-root user that is the one the Deployment names, the ports Settings
and the Deployment use, and a final stage that only copies what the build stage made.
"""

from __future__ import annotations

import re
import sys
from typing import Any

import yaml
from dockerfile_parse import DockerfileParser

from tests.dockerfile import DOCKERFILE, REPO, final_stage, image_command, instruction
from wpenv.settings import Settings

DEPLOYMENT = REPO / "manifests" / "base" / "deployment.yaml"
# name:X.Y.Z[-variant], optionally @sha256:digest: never a floating tag such as 3.11-slim.
EXACT_IMAGE = re.compile(r"^[\w./-]+:\d+\.\d+\.\d+[\w.-]*(@sha256:[0-9a-f]{64})?$")
BUILD_TOOLS = ("pip ", "pip3 ", "gcc", "build-essential", "setuptools", "wheel")


def pod_spec() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(DEPLOYMENT.read_text())["spec"]["template"]["spec"]
    return spec


def test_every_stage_starts_from_an_exact_python_of_the_tested_minor() -> None:
    bases = DockerfileParser(path=str(DOCKERFILE)).parent_images
    assert len(bases) >= 2, "build and final stages"
    for base in bases:
        assert EXACT_IMAGE.match(base), base
        version = base.split(":")[1].split(".")[:2]
        assert version == [str(sys.version_info.major), str(sys.version_info.minor)], base


def test_the_final_stage_runs_as_the_deployments_non_root_user() -> None:
    user = instruction("USER")
    assert user is not None
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0, "numeric, so runAsNonRoot can check it"
    security = pod_spec()["securityContext"]
    assert (int(uid), int(gid)) == (security["runAsUser"], security["runAsGroup"])


def test_the_final_stage_copies_the_build_and_builds_nothing() -> None:
    stage = final_stage()
    assert any(kind == "COPY" and value.startswith("--from=build ") for kind, value in stage)
    runs = " ".join(value for kind, value in stage if kind == "RUN")
    for tool in BUILD_TOOLS:
        assert tool not in runs, tool
    # Every Debian package is pinned to a version (hadolint's DL3008 says the same).
    installed = runs.partition("--no-install-recommends")[2].split("&&")[0].split()
    assert installed and all("=" in package for package in installed), installed


def test_ports_are_the_settings_and_the_deployments() -> None:
    exposed = {int(port) for port in (instruction("EXPOSE") or "").split()}
    fields = Settings.model_fields  # the defaults, whatever this process's WPENV_* say
    assert exposed == {fields["health_port"].default, fields["metrics_port"].default}
    (container,) = pod_spec()["containers"]
    assert {p["containerPort"] for p in container["ports"]} == exposed


def test_the_command_is_the_operators_entry_point() -> None:
    assert image_command() == ["python", "-m", "wpenv.operator"]
