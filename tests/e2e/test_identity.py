"""Identity end to end (HLD 3.3): kubectl apply gives the tenant its own Cognito pool.

Checked with plain boto3 against the emulator, as an auditor would.
"""

from __future__ import annotations

import json
import subprocess

import boto3
import pytest

from tests.e2e import envs

pytestmark = pytest.mark.e2e


def test_a_tenant_gets_a_pool_and_sso_settings_and_loses_them_with_an_export(
    platform: dict[str, str], operator: subprocess.Popen[bytes], namespace: str
) -> None:
    tenant = envs.tenant()
    envs.apply(platform, namespace, "sso", tenantId=tenant,
               identity={"groups": ["Admin", "Editor", "Viewer", "Billing"]})
    envs.wait_ready(platform, namespace, "sso")
    obj = envs.get(platform, namespace, "sso")
    ids = obj["status"]["resources"]
    assert envs.condition(obj, "Identity")["status"] == "True"

    cognito = boto3.client("cognito-idp")
    pool = cognito.describe_user_pool(UserPoolId=ids["userPoolId"])["UserPool"]
    assert pool["UserPoolTags"]["wpenv.bbws.io/tenant"] == tenant
    groups = {g["GroupName"] for g in cognito.list_groups(UserPoolId=pool["Id"])["Groups"]}
    assert groups == {"Admin", "Editor", "Viewer", "Billing"}
    client = cognito.describe_user_pool_client(
        UserPoolId=pool["Id"], ClientId=ids["userPoolClientId"])["UserPoolClient"]
    assert client["AllowedOAuthFlows"] == ["code"]
    assert set(client["AllowedOAuthScopes"]) == {"openid", "email", "profile"}
    assert client["CallbackURLs"][0].startswith(obj["status"]["url"])
    domain = cognito.describe_user_pool_domain(Domain=ids["userPoolDomain"])
    assert domain["DomainDescription"]["UserPoolId"] == pool["Id"]

    secret = json.loads(boto3.client("secretsmanager").get_secret_value(
        SecretId=ids["clientSecretArn"])["SecretString"])
    assert secret["client_secret"] == client["ClientSecret"]
    container = boto3.client("ecs").describe_task_definition(
        taskDefinition=ids["taskDefinitionArn"])["taskDefinition"]["containerDefinitions"][0]
    environment = {e["name"]: e["value"] for e in container["environment"]}
    assert environment["OIDC_CLIENT_ID"] == client["ClientId"]
    assert ids["userPoolDomain"] in environment["OIDC_ENDPOINT_LOGIN_URL"]
    assert client["ClientSecret"] not in json.dumps(container)
    assert any(s["name"] == "OIDC_CLIENT_SECRET" and s["valueFrom"].startswith(
        ids["clientSecretArn"]) for s in container["secrets"])

    cognito.admin_create_user(UserPoolId=pool["Id"], Username="ann@example.com",
                              UserAttributes=[{"Name": "email", "Value": "ann@example.com"}])
    users = cognito.list_users(UserPoolId=pool["Id"])["Users"]
    cognito.admin_add_user_to_group(UserPoolId=pool["Id"], Username=users[0]["Username"],
                                    GroupName="Admin")

    envs.patch(platform, namespace, "sso", {"identity": {"enabled": False}})
    obj = envs.wait_for(
        platform, namespace, "sso",
        lambda o: "userPoolId" not in o["status"]["resources"]
        and envs.condition(o, "Ready").get("status") == "True",
        what="the pool removed",
    )
    exported = [e["message"] for e in envs.events(platform, namespace, "sso")
                if e["reason"] == "UsersExported"]
    assert len(exported) == 1
    uri = exported[0].rpartition(" ")[2]
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    document = json.loads(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    assert [u["groups"] for u in document["users"]] == [["Admin"]]
    pages = cognito.get_paginator("list_user_pools").paginate(MaxResults=60)
    assert pool["Id"] not in {p["Id"] for page in pages for p in page["UserPools"]}
    container = boto3.client("ecs").describe_task_definition(
        taskDefinition=obj["status"]["resources"]["taskDefinitionArn"]
    )["taskDefinition"]["containerDefinitions"][0]
    assert not any(e["name"].startswith("OIDC_") for e in container.get("environment", []))
