"""Unit tests see none of the platform's environment.

The session's platform fixture (tests/conftest.py) exports its endpoints and ids
(AWS_ENDPOINT_URL, WPENV_*) for the integration and end-to-end tests, which pytest may run
before these. A unit test runs on in-process moto and its own settings; with those
variables left in place, boto3 would reach the platform's server and Settings() would read
the platform's values.
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.platform import wordpress


@pytest.fixture(autouse=True)
def _no_platform_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Take AWS_ENDPOINT_URL and every WPENV_* variable away for the test."""
    for name in list(os.environ):
        if name == "AWS_ENDPOINT_URL" or name.startswith("WPENV_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def php() -> str:
    """Debian's php-cli, installed when missing: a test that needs PHP runs, never skips.

    The platform installs the same packages for the data plane (tests/platform/wordpress.py),
    but pytest may run these tests before any platform starts."""
    wordpress.ensure_installed()
    found = shutil.which("php", path=wordpress.PATH)
    assert found, f"php not found after installing {', '.join(wordpress.PACKAGES)}"
    return found
