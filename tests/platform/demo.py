"""The main job on the local platform: a sample manifest becomes an environment.

Installs the CRD and the operator's identity (manifests/base: its ServiceAccount and
ClusterRole), runs the operator with a token of that service account, applies
`manifests/samples/acme.yaml`, waits for the environment to settle and prints
`kubectl get wpenv -o wide` as a platform team sees it. Then it opens the site as a
browser on this machine would (the load balancer on loopback, the platform's CA:
WPENV_CA_BUNDLE, WPENV_ALB_RESOLVE) and prints its https URL and the page's title, with
the curl command that does the same.
The platform stays up afterwards (`make down` stops it); the operator is stopped.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.platform import kube, stack
from tests.platform.site import Answer, SiteClient

SAMPLE = kube.REPO / "manifests" / "samples" / "acme.yaml"
SETTLED = {"Active", "Failed", "Suspended"}
SITE_WAIT_SECONDS = 60  # the rollout is done at Active; the first page may take a moment


def open_site(env: dict[str, str], url: str, wait_seconds: float = SITE_WAIT_SECONDS) -> Answer:
    """GET the tenant's URL until WordPress answers 200 (or the wait is over)."""
    client = SiteClient(env)
    deadline = time.monotonic() + wait_seconds
    answer = client.get(url)
    while answer.status != 200 and time.monotonic() < deadline:
        time.sleep(1)
        answer = client.get(url)
    return answer


def curl_command(env: dict[str, str], url: str) -> str:
    """The curl command line that reaches the site from this machine."""
    resolve = " ".join(f"--resolve {entry}" for entry in env.get("WPENV_ALB_RESOLVE", "").split())
    return f'curl --cacert "$WPENV_CA_BUNDLE" {resolve} {url}'


def show_site(env: dict[str, str]) -> int:
    """Print the site's URL and title; 0 when WordPress answers."""
    url = kube.kubectl("get", "wpenv", "acme", "-o", "jsonpath={.status.url}", env=env).stdout
    answer = open_site(env, url)
    print(f"\nSite: {url}\n  HTTP {answer.status}, title: {answer.title or '(none)'}")
    print(f"  {curl_command(env, url)}")
    return 0 if answer.status == 200 and answer.title else 1


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
        if phase != "Active":
            return 1
        return show_site(env)
    finally:
        kube.stop_operator(operator)
