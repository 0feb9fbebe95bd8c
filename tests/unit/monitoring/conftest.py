"""promtool, built once from the Go module proxy and cached (tests/platform/build-promtool.sh)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
MONITORING = REPO / "manifests" / "monitoring"
BUILD = REPO / "tests" / "platform" / "build-promtool.sh"


@pytest.fixture(scope="session")
def promtool() -> Path:
    """The cached promtool binary; the first run builds it (two to four minutes)."""
    built = subprocess.run([str(BUILD)], capture_output=True, text=True, check=False)
    if built.returncode != 0:
        pytest.fail(f"building promtool failed:\n{built.stderr[-3000:]}")
    return Path(built.stdout.strip().splitlines()[-1])
