"""End-to-end fixtures: the operator as a separate process, one for the session."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.platform import kube

HEALTH_PORT = 28080


@pytest.fixture(scope="session")
def operator(platform: dict[str, str], local: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The operator as its own process, as it runs in production."""
    proc = kube.start_operator(platform, local / "operator.log", HEALTH_PORT)
    try:
        yield proc
    finally:
        kube.stop_operator(proc)
