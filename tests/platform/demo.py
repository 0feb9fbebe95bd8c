"""The main job on the local platform: a sample manifest becomes an environment.

Installs the CRD and the operator's identity (manifests/base: its ServiceAccount and
ClusterRole), runs the operator with a token of that service account, applies
`manifests/samples/acme.yaml`, waits for the environment to settle and prints
`kubectl get wpenv -o wide` as a platform team sees it.
The platform stays up afterwards (`make down` stops it); the operator is stopped.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.platform import kube, stack

SAMPLE = kube.REPO / "manifests" / "samples" / "acme.yaml"
SETTLED = {"Active", "Failed", "Suspended"}


def run(local: Path, wait_seconds: float = 300) -> int:
    """Apply the sample under a running operator; 0 when it settles, 1 otherwise."""
    env = stack.read_env(local / "env")
    kube.install_crd(env)
    # The operator as the install runs it: its own service account, the base's ClusterRole;
    # plain text for a person reading the log (the image logs JSON).
    operator = kube.start_operator(
        {"WPENV_LOG_FORMAT": "plain", **kube.operator_env(env, local)}, local / "operator.log",
        health_port=18080,
    )
    try:
        print(kube.kubectl("apply", "-f", str(SAMPLE), env=env).stdout.strip())
        phase = ""
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            phase = kube.kubectl(
                "get", "wpenv", "acme", "-o", "jsonpath={.status.phase}", env=env
            ).stdout
            if phase in SETTLED:
                break
            time.sleep(1)
        print(kube.kubectl("get", "wpenv", "-o", "wide", env=env).stdout, end="")
        print(f"\nOperator log: {local / 'operator.log'}")
        return 0 if phase == "Active" else 1
    finally:
        kube.stop_operator(operator)
