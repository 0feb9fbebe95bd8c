"""The suite's operator runs as the install's service account, not as the admin.

So every end-to-end test is also a test of the ClusterRole in manifests/base: a verb it
lacks makes the operator's calls fail with 403 and the test with them.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import yaml

from tests.platform import kube


def test_the_operator_authenticates_as_its_service_account(
    operator_env: dict[str, str], operator: subprocess.Popen[bytes]
) -> None:
    answer = kube.kubectl("auth", "whoami", "-o", "json", env=operator_env).stdout
    user = json.loads(answer)["status"]["userInfo"]
    assert user["username"] == kube.OPERATOR_USER
    assert "system:masters" not in user["groups"]


def test_its_kubeconfig_holds_a_token_and_no_admin_certificate(
    operator_env: dict[str, str],
) -> None:
    with open(operator_env["KUBECONFIG"]) as file:
        config = yaml.safe_load(file)
    (user,) = config["users"]
    assert set(user["user"]) == {"token"}


def test_the_service_account_cannot_read_secrets(operator_env: dict[str, str]) -> None:
    """Its own credentials, refused by the API server (not only a can-i prediction)."""
    answer = kube.kubectl("get", "secrets", "-A", env=operator_env, check=False)
    assert answer.returncode != 0
    assert "forbidden" in answer.stderr.lower()


# How a refusal shows in the log: kopf's own API client, and the operator's own requests
# (wpenv/kube.py's ApiError: the leases, the orphan scan) in a handler's traceback.
REFUSALS = ("APIForbiddenError", "ApiError: 403 ")


def test_the_api_server_never_refused_the_operator(
    operator: subprocess.Popen[bytes], local: Path
) -> None:
    """Nothing the operator did so far in this session (its watches start at once, and
    kopf retries a refused one every few seconds) was forbidden."""
    time.sleep(3)  # a refused watch is logged within a second of the refusal
    text = (local / "operator.log").read_text(errors="replace")
    assert text.strip(), "the operator logged nothing"
    assert not [line for line in text.splitlines() if any(r in line for r in REFUSALS)]
