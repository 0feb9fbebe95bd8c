"""HTTPS and Cognito's rules end to end: a tenant whose id holds Cognito's reserved words is
provisioned to Active behind the HTTPS listeners, although the platform refuses what AWS
refuses (http callbacks, reserved prefixes, a role ECS cannot assume yet)."""

from __future__ import annotations

import subprocess
import time
import uuid

import boto3
import pytest

from tests.e2e import envs
from tests.platform.fidelity.cognito import domain_refusal
from tests.platform.journal import matching, read_journal

pytestmark = pytest.mark.e2e


def test_reserved_words_in_the_tenant_id_and_https_urls_reach_active(
    platform: dict[str, str], operator: subprocess.Popen[bytes], namespace: str
) -> None:
    tenant = f"aws-amazon-cognito-{uuid.uuid4().hex[:8]}"
    since = time.time()
    obj = envs.provision(platform, namespace, "tls", tenantId=tenant)
    status = obj["status"]
    assert status["phase"] == "Active"
    assert status["url"].startswith("https://") and status["url"].endswith(f"/{tenant}/")

    ids = status["resources"]
    assert domain_refusal(ids["userPoolDomain"]) is None
    cognito = boto3.client("cognito-idp")
    described = cognito.describe_user_pool_domain(Domain=ids["userPoolDomain"])
    assert described["DomainDescription"]["UserPoolId"] == ids["userPoolId"]
    client = cognito.describe_user_pool_client(
        UserPoolId=ids["userPoolId"], ClientId=ids["userPoolClientId"])["UserPoolClient"]
    urls = client["CallbackURLs"] + client["LogoutURLs"]
    assert urls and all(url.startswith(status["url"]) for url in urls)

    # ECS may have refused the first registration (the task role was seconds old): the
    # operator took that as transient and the last one went through.
    registrations = matching(read_journal(platform["AWS_ENDPOINT_URL"], since), service="ecs",
                             action="RegisterTaskDefinition", naming=f"wpenv-{tenant}")
    assert registrations and registrations[-1].status == 200
    assert {entry.status for entry in registrations} <= {200, 400}
    print(f"refused registrations before the role propagated: "
          f"{sum(entry.status == 400 for entry in registrations)}")
