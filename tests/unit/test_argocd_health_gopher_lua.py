"""The Argo CD health check in gopher-lua, the Lua VM Argo CD embeds.

tests/unit/test_argocd_health.py runs the cases on lupa's Lua 5.1, quickly; this runs the
Go test in manifests/argocd/healthtest/ over the same health_test.yaml, in Argo CD's own
VM and sandbox. Go is the toolchain that builds the control plane
(tests/platform/build-control-plane.sh); modules and builds are cached in the same place
(WPENV_CACHE, default ~/.cache/wpenv-operator), so only the first run downloads.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.platform import kube

HEALTHTEST = kube.REPO / "manifests" / "argocd" / "healthtest"


def go_env() -> dict[str, str]:
    """Go's module and build caches under the project's cache, never the user's GOPATH."""
    cache = Path(os.environ.get("WPENV_CACHE", Path.home() / ".cache" / "wpenv-operator"))
    return {
        **os.environ,
        "GOPATH": str(cache / "go"),
        "GOCACHE": str(cache / "go-build"),
        # go.sum is committed: the build uses exactly those modules, and no newer Go
        # toolchain is fetched for a go directive the installed one satisfies.
        "GOFLAGS": "-mod=readonly -modcacherw",
        "GOTOOLCHAIN": "local",
    }


def test_health_cases_pass_in_gopher_lua() -> None:
    go = shutil.which("go")
    assert go, "the go toolchain is needed (it also builds the control plane)"
    # -count=1: the Go test reads files outside its module, which go's result cache
    # does not watch; an edited health_test.yaml must be run, never a cached pass.
    result = subprocess.run(
        [go, "test", "-count=1", "-v", "./..."],
        cwd=HEALTHTEST, env=go_env(), capture_output=True, text=True, timeout=540, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    cases = [line for line in result.stdout.splitlines()
             if line.strip().startswith("--- PASS: TestHealthCases/")]
    assert len(cases) >= 8, result.stdout
    assert "--- PASS: TestSandboxIsArgoCDs" in result.stdout
