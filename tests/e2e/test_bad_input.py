"""Bad input: the API server refuses every invalid manifest, naming the field, and the
operator never sees one.

Every case of bad_manifests.py is applied for real (not as a dry run) through kubectl
against the real kube-apiserver while the session's operator watches every namespace;
each must fail with a message that names the field. Then the operator is shown to have
seen none of them: no object and no Event in their namespace, and no line of its log
naming their namespace or the tenant id they carry, although it demonstrably processed a
change made after the last of them.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.e2e import envs
from tests.e2e.bad_manifests import CASES, CHANGED_TENANT, IMMUTABLE_CHANGES, MARK, Case
from tests.platform import kube

pytestmark = pytest.mark.e2e

# The issue asks for at least this many refused manifests.
AT_LEAST = 30


@dataclass(frozen=True)
class Session:
    """What applying every bad manifest left: the answers, and where it happened."""

    namespace: str  # where every bad manifest went; nothing else is ever made there
    answers: dict[str, subprocess.CompletedProcess[str]]
    changes: dict[str, subprocess.CompletedProcess[str]]
    fixed_namespace: str  # the valid object whose immutable fields the changes touch
    fixed_tenant: str


def _namespace(env: dict[str, str]) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    kube.kubectl("create", "namespace", name, env=env)
    return name


def _apply(env: dict[str, str], namespace: str, case: Case) -> subprocess.CompletedProcess[str]:
    return kube.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(case.body),
                        check=False, env=env)


def _change(env: dict[str, str], namespace: str, patch: dict[str, object]
            ) -> subprocess.CompletedProcess[str]:
    return kube.kubectl("patch", "wpenv", "fixed", "-n", namespace, "--type", "merge",
                        "-p", json.dumps({"spec": patch}), check=False, env=env)


@pytest.fixture(scope="module")
def session(platform: dict[str, str], operator: subprocess.Popen[bytes]) -> Session:
    """Apply every bad manifest and every immutable change once, with the operator running.

    Last, a valid change to the one valid object, which the operator must process: its
    watch has then delivered everything up to a point after the last bad request.
    """
    fixed_namespace, tenant = _namespace(platform), envs.tenant()
    envs.apply(platform, fixed_namespace, "fixed", tenantId=tenant)
    envs.wait_for(platform, fixed_namespace, "fixed",
                  lambda o: (o.get("status") or {}).get("observedGeneration") == 1,
                  what="the operator to see the valid object")
    namespace = _namespace(platform)
    answers = {case.id: _apply(platform, namespace, case) for case in CASES}
    changes = {id_: _change(platform, fixed_namespace, patch)
               for id_, patch, _ in IMMUTABLE_CHANGES}
    envs.patch(platform, fixed_namespace, "fixed", {"replicas": 3})
    envs.wait_for(platform, fixed_namespace, "fixed",
                  lambda o: (o.get("status") or {}).get("observedGeneration") == 2,
                  what="the operator to see a change made after every bad one")
    return Session(namespace, answers, changes, fixed_namespace, tenant)


def test_at_least_30_bad_manifests_cover_every_category() -> None:
    ids = [case.id for case in CASES] + [id_ for id_, _, _ in IMMUTABLE_CHANGES]
    assert len(ids) == len(set(ids)), "case ids name objects: each must be unique"
    assert len(ids) >= AT_LEAST
    categories = Counter(case.category for case in CASES)
    assert len(categories) == 7, categories  # and the immutable changes make the eighth
    print(f"{len(ids)} bad manifests: {dict(categories)}, immutable {len(IMMUTABLE_CHANGES)}")


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_each_bad_manifest_is_refused_naming_its_field(session: Session, case: Case) -> None:
    answer = session.answers[case.id]
    assert answer.returncode != 0, f"{case.id} was accepted: {answer.stdout}"
    assert "is invalid" in answer.stderr or "unknown field" in answer.stderr, answer.stderr
    assert case.refusal in answer.stderr, answer.stderr


@pytest.mark.parametrize(("change", "refusal"), [(c[0], c[2]) for c in IMMUTABLE_CHANGES],
                         ids=[c[0] for c in IMMUTABLE_CHANGES])
def test_immutable_fields_cannot_change(
    platform: dict[str, str], session: Session, change: str, refusal: str
) -> None:
    answer = session.changes[change]
    assert answer.returncode != 0, f"{change} was accepted"
    assert "spec.tenantId" in answer.stderr and refusal in answer.stderr, answer.stderr
    fixed = envs.get(platform, session.fixed_namespace, "fixed")
    assert fixed["spec"]["tenantId"] == session.fixed_tenant


def _lines_naming(log: Path, *needles: str) -> list[str]:
    text = log.read_text(errors="replace") if log.exists() else ""
    return [line for line in text.splitlines() if any(n in line for n in needles)]


def test_the_operator_never_saw_a_bad_manifest(
    platform: dict[str, str], session: Session, local: Path
) -> None:
    listed = kube.kubectl("get", "wpenv", "-n", session.namespace, "-o", "json", env=platform)
    assert json.loads(listed.stdout)["items"] == []
    events = kube.kubectl("get", "events", "-n", session.namespace, "-o", "json", env=platform)
    assert json.loads(events.stdout)["items"] == []
    assert CHANGED_TENANT.startswith(MARK)

    # The log is live and names what the operator did see: the valid object's tenant.
    log = local / "operator.log"
    deadline = time.monotonic() + 60
    while not _lines_naming(log, session.fixed_tenant) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _lines_naming(log, session.fixed_tenant), "the operator logged nothing of its work"
    assert _lines_naming(log, session.namespace, MARK) == []


def test_values_at_the_edges_of_every_rule_are_accepted(
    platform: dict[str, str], namespace: str
) -> None:
    """The rules refuse only what they must: the longest and oddest valid values pass."""
    label = "a" * 63
    spec = {
        "tenantId": "a" * 31 + "9",
        "image": "registry.example.com:5000/team/wordpress:6.8-php8.3_apache",
        "routing": {"pathPrefix": "/" + "a" * 63, "host": f"{label}.{'b' * 52}.example.com"},
        "identity": {
            "callbackUrls": [
                "https://acme.example.com/wp-admin/admin-ajax.php?action=openid-connect-authorize",
                "http://localhost:8080/cb", "http://127.0.0.1/cb", "http://[::1]:9000/",
                "https://a.example/" + "a" * 1006,
            ],
            "logoutUrls": ["https://acme.example.com/", "https://acme.example.com/?a=1&b=%20"],
            "groups": ["Admin", "Site-Editors", "billing_2", "v1.2", "g" * 128],
        },
    }
    assert len(spec["routing"]["host"]) == 128  # type: ignore[index]
    body = {"apiVersion": "bbws.io/v1alpha1", "kind": "WordPressEnvironment",
            "metadata": {"name": "n" * 192}, "spec": spec}
    kube.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-",
                 stdin=yaml.safe_dump(body), env=platform)
