"""The operator's periodic orphan scan (HLD 5.4): a metric and a log line per orphan."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import boto3
import pytest

from tests.conftest import OPERATOR_HEALTH_PORT
from tests.e2e.conftest import ORPHAN_SCAN_SECONDS

pytestmark = pytest.mark.e2e


def _gauge(kind: str) -> float:
    url = f"http://127.0.0.1:{OPERATOR_HEALTH_PORT + 1}/metrics"
    with urllib.request.urlopen(url, timeout=5) as answer:
        text = answer.read().decode()
    for line in text.splitlines():
        if line.startswith(f'wpenv_orphaned_resources{{kind="{kind}"}}'):
            return float(line.split()[-1])
    return 0.0


def test_an_orphan_is_reported_by_the_running_operator(
    platform: dict[str, str], operator: subprocess.Popen[bytes], local: Path
) -> None:
    ec2 = boto3.client("ec2")
    tenant = f"o{uuid.uuid4().hex[:8]}"
    group = ec2.create_security_group(
        GroupName=f"wpenv-{tenant}", Description="left behind", VpcId=os.environ["WPENV_VPC_ID"],
        TagSpecifications=[{"ResourceType": "security-group", "Tags": [
            {"Key": "wpenv.bbws.io/environment", "Value": f"gone.{tenant}"},
            {"Key": "wpenv.bbws.io/tenant", "Value": tenant},
            {"Key": "app.kubernetes.io/managed-by", "Value": "wpenv-operator"},
        ]}],
    )["GroupId"]
    try:
        log = local / "operator.log"
        deadline = time.monotonic() + ORPHAN_SCAN_SECONDS * 3 + 30
        while time.monotonic() < deadline:
            if group in log.read_text(errors="replace"):
                break
            time.sleep(1)
        lines = [line for line in log.read_text(errors="replace").splitlines() if group in line]
        assert any("orphaned" in line for line in lines), "one log line names the orphan"
        assert _gauge("SecurityGroup") >= 1
    finally:
        ec2.delete_security_group(GroupId=group)
