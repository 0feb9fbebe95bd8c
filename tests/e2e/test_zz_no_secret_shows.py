"""No secret ever shows: after the whole end-to-end run, no secret value is anywhere a
person or a scraper can read the operator's output.

This module runs last in the session (its tests carry the `runs_last` marker, which
tests/conftest.py orders after everything else), so it scans what every other test left.
It also makes and deletes one environment of its own, so that run alone it still has a
living and a deleted environment to look at.

The secrets are the real values: every value the platform's AWS API carried (the secret
witness, tests/platform/witness.py: Secrets Manager values and Cognito client secrets,
including those of environments deleted long ago, which no snapshot of Secrets Manager
could show), checked against what Secrets Manager and Cognito hold now, plus the MariaDB
admin password. The WordPress admin password and the keys and salts are among them (each
tenant's site secret, `wpenv/<tenant>/wordpress`); a task definition holding a plain
variable named like one would be a leak of its own, and is looked for too.

Each secret is searched for as it is, percent-encoded, JSON-escaped and base64-encoded
(standard and URL-safe alphabets, at each of the three alignments it can have inside a
longer encoded text) in: the operator's logs (which hold its exception messages and
tracebacks), Events, every WordPressEnvironment as JSON (status and its conditions'
messages), `kubectl describe`, the metrics page, and every task definition.
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.conftest import OPERATOR_HEALTH_PORT
from tests.e2e import envs
from tests.platform import kube
from tests.platform.witness import disguises, read_secrets, secrets_in

pytestmark = [pytest.mark.e2e, pytest.mark.runs_last]

# Shorter values (a test's deliberately wrong password, say) could match by chance; every
# secret the operator or the platform makes is far longer (32 characters and more).
MIN_LENGTH = 12
METRICS_URL = f"http://127.0.0.1:{OPERATOR_HEALTH_PORT + 1}/metrics"
# A variable named like a secret (WORDPRESS_DB_PASSWORD, WORDPRESS_AUTH_SALT, ..._KEY).
SECRET_NAME = re.compile(r"(PASSWORD|PASS|SECRET|SALT|KEY|TOKEN)$", re.IGNORECASE)
# Secrets Manager's answer for a secret scheduled for deletion (its value is unreadable).
MARKED_FOR_DELETION = "InvalidRequestException"

NO_VALUE = "ResourceNotFoundException"


def _secrets_manager_values() -> dict[str, str]:
    """value -> secret name of every readable version of every secret there now."""
    sm = boto3.client("secretsmanager")
    found: dict[str, str] = {}
    for page in sm.get_paginator("list_secrets").paginate(IncludePlannedDeletion=True):
        for secret in page["SecretList"]:
            arn = secret["ARN"]
            versions = sm.list_secret_version_ids(SecretId=arn, IncludeDeprecated=True)
            for version in versions["Versions"]:
                try:
                    value = sm.get_secret_value(SecretId=arn, VersionId=version["VersionId"])
                except ClientError as error:
                    # A secret marked for deletion, or a version left without a value (a
                    # failed rotation's AWSPENDING is emptied): nothing there to find.
                    if error.response["Error"]["Code"] in (MARKED_FOR_DELETION, NO_VALUE):
                        continue
                    raise
                for item, _ in secrets_in(value.get("SecretString") or ""):
                    found.setdefault(item, secret["Name"])
    return found


def _client_secrets() -> dict[str, str]:
    """value -> app client id of every Cognito app client secret there now."""
    idp = boto3.client("cognito-idp")
    found: dict[str, str] = {}
    for page in idp.get_paginator("list_user_pools").paginate(MaxResults=60):
        for pool in page["UserPools"]:
            clients = idp.list_user_pool_clients(UserPoolId=pool["Id"], MaxResults=60)
            for client in clients["UserPoolClients"]:
                described = idp.describe_user_pool_client(
                    UserPoolId=pool["Id"], ClientId=client["ClientId"])["UserPoolClient"]
                if described.get("ClientSecret"):
                    found[described["ClientSecret"]] = client["ClientId"]
    return found


def _task_definitions() -> Iterator[dict[str, object]]:
    ecs = boto3.client("ecs")
    for status in ("ACTIVE", "INACTIVE"):
        for page in ecs.get_paginator("list_task_definitions").paginate(status=status):
            for arn in page["taskDefinitionArns"]:
                yield ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]


def _haystacks(platform: dict[str, str], local: Path) -> dict[str, str]:
    """Every place the operator's output can be read, by name, as text."""
    places = {f"log {path.name}": path.read_text(errors="replace")
              for path in sorted(local.glob("operator*.log"))}
    places["Events"] = kube.kubectl("get", "events", "-A", "-o", "json", env=platform).stdout
    places["objects and status"] = kube.kubectl(
        "get", "wpenv", "-A", "-o", "json", env=platform).stdout
    places["kubectl describe"] = kube.kubectl("describe", "wpenv", "-A", env=platform).stdout
    with urllib.request.urlopen(METRICS_URL, timeout=10) as answer:
        places["metrics page"] = answer.read().decode(errors="replace")
    places["task definitions"] = json.dumps(list(_task_definitions()), default=str)
    return places


@pytest.fixture(scope="module")
def deleted_tenant(platform: dict[str, str], operator: subprocess.Popen[bytes]) -> str:
    """An environment of this module's own, provisioned with identity, then deleted."""
    namespace, tenant = f"t-leak-{envs.tenant()}", envs.tenant()
    kube.kubectl("create", "namespace", namespace, env=platform)
    envs.provision(platform, namespace, "leak", tenantId=tenant)
    kube.kubectl("delete", "wpenv", "leak", "-n", namespace, "--timeout=240s", env=platform,
                 timeout=250)
    return tenant


def test_no_task_definition_holds_a_secret_in_plain_variables(
    platform: dict[str, str], deleted_tenant: str
) -> None:
    """Passwords, salts and keys reach a container as `secrets` references only."""
    plain = [
        (definition["family"], variable["name"])
        for definition in _task_definitions()
        for container in definition["containerDefinitions"]  # type: ignore[attr-defined]
        for variable in container.get("environment") or []
        if SECRET_NAME.search(variable["name"])
    ]
    assert plain == []


def test_no_secret_shows_anywhere(
    platform: dict[str, str], operator: subprocess.Popen[bytes], local: Path,
    deleted_tenant: str,
) -> None:
    witnessed = read_secrets(platform["AWS_ENDPOINT_URL"])  # before our own reads add to it
    now = {**_secrets_manager_values(), **_client_secrets()}
    missing = sorted(source for value, source in now.items() if value not in witnessed)
    assert missing == [], f"values the witness never saw: {missing}"
    sources = {source for found in witnessed.values() for source in found}
    for kind in ("database", "oidc-client"):  # the deleted environment's, seen anyway
        assert any(f"wpenv/{deleted_tenant}/{kind}" in s for s in sources), kind
    assert any("ClientSecret" in s or "UserPoolClient" in s for s in sources)

    secrets = {value: found[0] for value, found in witnessed.items() if len(value) >= MIN_LENGTH}
    secrets[platform["MYSQL_PWD"]] = "the MariaDB admin password"
    places = _haystacks(platform, local)
    assert places["log operator.log"] and places["metrics page"]
    leaks = [
        f"{source} ({form}) in {place}"
        for value, source in secrets.items()
        for form, text in disguises(value, MIN_LENGTH).items()
        for place, haystack in places.items()
        if text in haystack
    ]
    assert leaks == [], "secrets shown:\n" + "\n".join(leaks)
