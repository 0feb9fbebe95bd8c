"""End-to-end fixtures: the operator as a separate process, one for the session."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import OPERATOR_HEALTH_PORT
from tests.e2e import envs
from tests.platform import kube

# The drift check's period for the session's operator: short, so a test sees a repair.
DRIFT_SECONDS = 4
# And of the orphan scan (daily in production); the first scan waits one period.
ORPHAN_SCAN_SECONDS = 15
RETRY_BASE_SECONDS = 0.5
RETRY_MAX_SECONDS = 8


@pytest.fixture(scope="session")
def operator_env(platform: dict[str, str], local: Path) -> dict[str, str]:
    """What an operator process of the suite gets: its own service account's credentials.

    A token of the install's ServiceAccount (TokenRequest API), bound by the install's
    ClusterRole, never the platform's admin: every end-to-end test shows the ClusterRole
    is enough. The tests' own kubectl calls stay admin.
    """
    return kube.operator_env(platform, local)


@pytest.fixture(scope="session")
def operator(operator_env: dict[str, str], local: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The operator as its own process, as it runs in production."""
    env = {**operator_env, "WPENV_DRIFT_INTERVAL_SECONDS": str(DRIFT_SECONDS),
           "WPENV_ORPHAN_SCAN_INTERVAL_SECONDS": str(ORPHAN_SCAN_SECONDS),
           # The emulator has no pool quota and the suite makes many environments; the
           # quota itself is tested with explicit settings in tests/integration.
           "WPENV_USER_POOL_QUOTA": "1000",
           # Every environment but those a test gives to shards of its own.
           "WPENV_SHARD_SELECTOR": f"!{envs.SHARD_LABEL}",
           # The engine's backoff, short (production: 2 s, at most 120 s): the suite injects
           # AWS faults (test_aws_faults) and CI has two cores.
           "WPENV_RETRY_BASE_SECONDS": str(RETRY_BASE_SECONDS),
           "WPENV_RETRY_MAX_SECONDS": str(RETRY_MAX_SECONDS),
           # botocore's standard mode stops retrying once its retry quota is spent (about
           # 35 server errors): at test_aws_faults' 30 % no pass gets through after that.
           "WPENV_AWS_RETRY_MODE": "legacy"}
    log = local / "operator.log"
    log.unlink(missing_ok=True)  # this session's lines only (test_operator_identity reads them)
    proc = kube.start_operator(env, log, OPERATOR_HEALTH_PORT)
    try:
        yield proc
    finally:
        kube.stop_operator(proc)
