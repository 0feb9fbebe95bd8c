"""The operator's Kubernetes client (wpenv.kube): what its errors mean, and what it sends,
against real servers (tests/unit/kube_wire.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from unittest import mock

import pytest

from tests.platform.stack import REPO
from tests.unit.kube_wire import SEEN, answered, answering, api, error_of, refused
from wpenv import kube


def test_a_refused_connection_is_unavailable_not_gone() -> None:
    error = refused()
    assert kube.unavailable(error) and not kube.gone(error)


@pytest.mark.parametrize("status", [500, 503, 504, 429])
def test_a_server_not_ready_or_throttling_is_unavailable(status: int) -> None:
    error = answered(status)
    assert kube.unavailable(error) and not kube.gone(error)


def test_not_found_is_gone() -> None:
    error = answered(404)
    assert kube.gone(error) and not kube.unavailable(error)


@pytest.mark.parametrize("status", [403, 422])
def test_a_refusal_is_neither(status: int) -> None:
    error = answered(status)
    assert not kube.unavailable(error) and not kube.gone(error)


def test_an_error_of_another_library_is_neither() -> None:
    assert not kube.unavailable(ValueError("x")) and not kube.gone(ValueError("x"))


def test_an_error_says_the_servers_status_reason_and_message() -> None:
    error = answered(403)
    assert isinstance(error, kube.ApiError)
    assert (error.status, error.reason, str(error)) == (403, "Tested",
                                                        "403 Tested: as the test asked")


def test_a_request_sends_json_with_the_credentials() -> None:
    with answering(200) as port:
        answer = api(port).request("PUT", "/apis/x/v1/things/a", body={"spec": {"n": 1}})
    method, path, authorization, body = SEEN[-1]
    assert answer == {"kind": "Lease"}
    assert (method, path, authorization) == ("PUT", "/apis/x/v1/things/a", "Bearer t0k")
    assert json.loads(body) == {"spec": {"n": 1}}


def test_a_query_is_encoded() -> None:
    with answering(200) as port:
        api(port).request("GET", "/x", query={"fieldSelector": "metadata.name=a b"})
    assert SEEN[-1][1] == "/x?fieldSelector=metadata.name%3Da+b"


def test_an_unauthorized_answer_logs_in_again_once(tmp_path: Path) -> None:
    """A rotated token: the next login's credentials are used for a second try."""
    with answering(401, 200) as port:
        config = tmp_path / "kubeconfig"
        config.write_text(json.dumps({
            "current-context": "c", "contexts": [{"name": "c", "context": {
                "cluster": "k", "user": "u"}}],
            "clusters": [{"name": "k", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
            "users": [{"name": "u", "user": {"token": "fresh"}}],
        }))
        with mock.patch.dict(os.environ, {"KUBECONFIG": str(config)}):
            answer = kube.Api().request("PUT", "/y", body={})
    assert answer == {"kind": "Lease"}
    assert [seen[2] for seen in SEEN[-2:]] == ["Bearer fresh", "Bearer fresh"]


def test_given_credentials_are_not_replaced_on_unauthorized() -> None:
    with answering(401, 200) as port:
        error = error_of(port)
    assert isinstance(error, kube.ApiError) and error.status == 401


def test_environment_paths() -> None:
    assert kube.environments() == "/apis/bbws.io/v1alpha1/wordpressenvironments"
    assert kube.environments("ns", "a", "status") == (
        "/apis/bbws.io/v1alpha1/namespaces/ns/wordpressenvironments/a/status")


def test_the_operator_runs_without_the_official_client() -> None:
    """kopf imports `kubernetes.client` (about 55 MB) whenever it is installed, so the
    image leaves it out: nothing of ours may need it, and it is no runtime dependency."""
    blocked = ("import sys; sys.modules['kubernetes'] = None; "
               "import wpenv.operator.__main__, wpenv.operator.handlers, wpenv.orphans.__main__;"
               " assert 'kubernetes.client' not in sys.modules")
    subprocess.run([sys.executable, "-c", blocked], check=True, timeout=120)
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if d.startswith("kubernetes")]
