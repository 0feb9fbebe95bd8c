"""What every benchmark does around its measurement: a private platform, a namespace, an operator.

Each benchmark runs on ports of its own (its PORTS) so it never meets a dev or test
platform; these helpers bring that platform up the same way for all of them and always tear
it down, even when the measurement fails half-way.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from tests.platform import kube, stack


@contextmanager
def private_platform(ports: Mapping[str, str], local: Path) -> Iterator[dict[str, str]]:
    """The platform on `ports` (state in `local`) with the CRD; its variables exported."""
    os.environ.update(ports)
    stack.down(local)  # whatever an interrupted run left behind
    try:
        env = stack.up(local)
        os.environ.update(env)
        kube.install_crd(env)
        yield env
    finally:
        stack.down(local)


def new_namespace(env: Mapping[str, str]) -> str:
    """A fresh `bench-xxxxxx` namespace, so runs never see each other's environments."""
    namespace = f"bench-{uuid.uuid4().hex[:6]}"
    kube.kubectl("create", "namespace", namespace, env=env)
    return namespace


@contextmanager
def running_operator(
    env: Mapping[str, str], log_path: Path, health_port: int, module: str = "wpenv.operator"
) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m wpenv.operator` (or a wrapper `module`) against the platform, then stopped."""
    command = (sys.executable, "-m", module)
    proc = kube.start_operator(env, log_path, health_port, command)
    try:
        yield proc
    finally:
        kube.stop_operator(proc)
