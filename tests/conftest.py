"""Fixtures shared by the integration and end-to-end tests: one local platform a session.

The platform runs on its own ports and state directory (.local/test-platform), so a
developer's `make up` platform is left alone, and it is torn down at the end: the suite
leaves no server running. Its variables are exported into this process for the session,
exactly as `source .local/env` does for a shell, so boto3, pymysql and kubectl reach it
with no test-only configuration.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.platform import kube, refusals, stack, wordpress
from tests.platform.chaos import reset_aws_faults
from tests.platform.journal import read_refusals

# WPENV_TEST_PORT_BASE moves every port, so two test sessions on one machine can run at
# once (each also needs its own WPENV_TEST_LOCAL directory). The default keeps every port
# below Linux's ephemeral range (32768-60999), where an outgoing connection could take one.
_BASE = int(os.environ.get("WPENV_TEST_PORT_BASE", "28000"))
PORTS = {
    "WPENV_ETCD_PORT": str(_BASE + 790),
    "WPENV_ETCD_PEER_PORT": str(_BASE + 800),
    "WPENV_APISERVER_PORT": str(_BASE + 3443),
    "WPENV_MOTO_PORT": str(_BASE + 2000),
    "WPENV_MYSQL_PORT": str(_BASE + 306),
}
# Operators the end-to-end tests start: the session's one, and extra ones a test kills.
OPERATOR_HEALTH_PORT = _BASE + 80
SPARE_OPERATOR_HEALTH_PORT = _BASE + 180


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """End-to-end tests last: their operator (session-scoped) watches every namespace, and
    would start provisioning manifests that integration tests create only as data. Tests
    marked `runs_last` (the leak scan, which reads what every other test left) after all."""
    items.sort(key=lambda item: (
        "tests/e2e/" in item.nodeid.replace("\\", "/"),
        item.get_closest_marker("runs_last") is not None,
    ))


@pytest.fixture(scope="session")
def local() -> Path:
    """The test platform's state directory."""
    return Path(os.environ.get("WPENV_TEST_LOCAL", stack.REPO / ".local" / "test-platform"))


# The error answers of the session's platform(s), read when each stops (refusals.py).
REFUSALS = pytest.StashKey[Counter[str]]()
REFUSALS_UNREAD = pytest.StashKey[int]()


@pytest.fixture(scope="session")
def platform(local: Path, pytestconfig: pytest.Config) -> Iterator[dict[str, str]]:
    """MariaDB, moto + simulator and the control plane, up for the session."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in PORTS.items():
            mp.setenv(key, value)
        # The platform enforces AWS's rate limits; the tests' own boto3 clients back off
        # the way the operator's do (botocore's standard mode), not with the legacy two.
        mp.setenv("AWS_RETRY_MODE", "standard")
        mp.setenv("AWS_MAX_ATTEMPTS", "8")
        # Real WordPress tasks cost time and memory: only tests that ask (`data_plane`).
        mp.setenv(wordpress.ENABLED_ENV, "off")
        stack.down(local)  # a previous run that was killed may have left servers behind
        env: dict[str, str] = {}
        try:
            env = stack.up(local)
            for key, value in env.items():
                mp.setenv(key, value)
            kube.install_crd(env)
            yield env
        finally:
            _tally_refusals(pytestconfig, env)
            stack.down(local)


def _tally_refusals(config: pytest.Config, env: dict[str, str]) -> None:
    """Add the stopping platform's error answers to the session's (one HTTP read)."""
    endpoint = env.get("AWS_ENDPOINT_URL")
    if not endpoint:
        return
    tally = config.stash.setdefault(REFUSALS, Counter())
    try:
        tally.update(read_refusals(endpoint, timeout=5.0))
    except (OSError, ValueError):  # URLError is an OSError
        config.stash[REFUSALS_UNREAD] = config.stash.get(REFUSALS_UNREAD, 0) + 1


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    """Say how often the session's platform refused a request, by kind and code."""
    tally = config.stash.get(REFUSALS, None)
    if tally is None:
        return  # no platform this session (unit tests only)
    terminalreporter.section("AWS platform")
    for line in refusals.summary(tally):
        terminalreporter.write_line(line)
    unread = config.stash.get(REFUSALS_UNREAD, 0)
    if unread:
        terminalreporter.write_line(f"not counted: {unread} platform(s) that did not answer")


@pytest.fixture
def data_plane(platform: dict[str, str]) -> Iterator[str]:
    """Every task started during the test is a real WordPress (wordpress.py); off after.

    Yields the AWS endpoint, whose ``/wpenv/tasks`` says where each task answers.
    """
    wordpress.ensure_installed()
    endpoint = platform["AWS_ENDPOINT_URL"]
    wordpress.set_enabled(endpoint, True)
    try:
        yield endpoint
    finally:
        wordpress.set_enabled(endpoint, False)


@pytest.fixture
def namespace(platform: dict[str, str]) -> str:
    """A fresh namespace per test, so tests cannot see each other's objects.

    No kube-controller-manager runs, so namespaces are never deleted (they would stay
    Terminating); the whole etcd goes away with the platform.
    """
    name = f"t-{uuid.uuid4().hex[:8]}"
    kube.kubectl("create", "namespace", name, env=platform)
    return name


@pytest.fixture
def endpoint(platform: dict[str, str]) -> Iterator[str]:
    """The platform's AWS endpoint; its AWS faults and rate limits back to the start-up
    settings before and after the test (a test that changes them at run time uses this)."""
    url = platform["AWS_ENDPOINT_URL"]
    reset_aws_faults(url)
    try:
        yield url
    finally:
        reset_aws_faults(url)
