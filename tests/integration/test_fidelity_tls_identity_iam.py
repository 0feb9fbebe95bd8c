"""The platform refuses what AWS refuses, over boto3: HTTPS listeners, Cognito URLs and
prefixes, roles too new for ECS. And the operator's code copes with each."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.platform.fidelity.iam_propagation import propagation_seconds
from wpenv import aws, engine
from wpenv.aws import Clients
from wpenv.errors import TransientError
from wpenv.plan import cognito_domain_prefix
from wpenv.reconcilers.pool import https_listener
from wpenv.settings import Settings

pytestmark = pytest.mark.e2e

TRUST = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
    "Action": "sts:AssumeRole"}]}


def _code(error: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    found = error.value.response["Error"]
    return str(found["Code"]), str(found["Message"])


def test_https_listeners_need_a_certificate_and_a_known_policy(
    clients: Clients, settings: Settings
) -> None:
    elbv2 = clients.elbv2
    alb_arn = settings.load_balancer_arns[0]
    [pool_listener] = elbv2.describe_listeners(
        ListenerArns=[https_listener(clients, alb_arn)]
    )["Listeners"]
    assert pool_listener["Protocol"] == "HTTPS"
    certificate = pool_listener["Certificates"][0]["CertificateArn"]
    base: dict[str, Any] = {
        "LoadBalancerArn": alb_arn, "Port": 9443,
        "DefaultActions": [{"Type": "fixed-response",
                            "FixedResponseConfig": {"StatusCode": "404"}}],
    }
    with pytest.raises(ClientError) as error:
        elbv2.create_listener(Protocol="HTTPS", **base)
    assert _code(error) == ("ValidationError",
                            "A certificate must be specified for HTTPS listeners")
    with pytest.raises(ClientError) as error:
        elbv2.create_listener(Protocol="HTTPS", SslPolicy="ELBSecurityPolicy-TLS13-9-9-2099-01",
                              Certificates=[{"CertificateArn": certificate}], **base)
    assert _code(error)[0] == "SSLPolicyNotFound"
    missing = certificate.rsplit("/", 1)[0] + f"/{uuid.uuid4()}"
    with pytest.raises(ClientError) as error:
        elbv2.create_listener(Protocol="HTTPS", Certificates=[{"CertificateArn": missing}],
                              **base)
    assert _code(error)[0] == "CertificateNotFound"
    ports = {listener["Port"] for listener in
             elbv2.describe_listeners(LoadBalancerArn=alb_arn)["Listeners"]}
    assert 9443 not in ports, "a refused listener was made anyway"


@pytest.fixture
def pool_id(clients: Clients) -> Iterator[str]:
    """A scratch user pool, deleted afterwards."""
    idp = clients.cognito_idp
    pid = str(idp.create_user_pool(PoolName=f"fidelity-{uuid.uuid4().hex[:8]}")["UserPool"]["Id"])
    yield pid
    idp.delete_user_pool(UserPoolId=pid)


def test_cognito_refuses_http_redirects_and_reserved_prefixes(
    clients: Clients, pool_id: str
) -> None:
    idp = clients.cognito_idp
    oauth: dict[str, Any] = {"AllowedOAuthFlows": ["code"], "AllowedOAuthScopes": ["openid"],
                             "AllowedOAuthFlowsUserPoolClient": True,
                             "SupportedIdentityProviders": ["COGNITO"]}
    with pytest.raises(ClientError) as error:
        idp.create_user_pool_client(UserPoolId=pool_id, ClientName="c",
                                    CallbackURLs=["http://alb.example.internal/acme/"], **oauth)
    assert _code(error) == ("InvalidParameterException",
                            "http://alb.example.internal/acme/ cannot use the HTTP protocol.")
    created = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="c", CallbackURLs=["https://alb.example.internal/acme/"],
        LogoutURLs=["http://localhost:8080/"], **oauth,
    )["UserPoolClient"]
    with pytest.raises(ClientError) as error:
        idp.update_user_pool_client(UserPoolId=pool_id, ClientId=created["ClientId"],
                                    LogoutURLs=["http://alb.example.internal/"], **oauth)
    assert _code(error)[0] == "InvalidParameterException"

    for domain, message in (("my-aws-shop", "Domain cannot contain reserved word: aws"),
                            ("wpenv-amazon-1", "Domain cannot contain reserved word: amazon")):
        with pytest.raises(ClientError) as error:
            idp.create_user_pool_domain(Domain=domain, UserPoolId=pool_id)
        assert _code(error) == ("InvalidParameterException", message)
    with pytest.raises(ClientError) as error:
        idp.create_user_pool_domain(Domain="Acme_Shop", UserPoolId=pool_id)
    assert "invalid character" in _code(error)[1]
    # What the operator asks for instead is taken.
    prefix = cognito_domain_prefix("it", "x", "cognito32charsxxxxxxxxxxxxxxxxxx")
    idp.create_user_pool_domain(Domain=prefix, UserPoolId=pool_id)
    idp.delete_user_pool_domain(Domain=prefix, UserPoolId=pool_id)


def test_ecs_cannot_assume_a_role_made_a_moment_ago(clients: Clients) -> None:
    iam, ecs = clients.iam, clients.ecs
    name = f"fidelity-{uuid.uuid4().hex[:8]}"
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]
    made = time.monotonic()
    definition: dict[str, Any] = {
        "family": name, "taskRoleArn": role["Arn"], "executionRoleArn": role["Arn"],
        "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"], "cpu": "256",
        "memory": "512", "containerDefinitions": [{"name": "c", "image": "wordpress:6.8"}],
    }
    try:
        with pytest.raises(ClientError) as error:
            ecs.register_task_definition(**definition)
        code, message = _code(error)
        assert code == "ClientException"
        assert message.startswith(f"ECS was unable to assume the role '{role['Arn']}'")
        assert isinstance(engine.classify(error.value), TransientError)  # the operator waits
        assert aws.is_transient(error.value)
        time.sleep(max(0.0, propagation_seconds() - (time.monotonic() - made)) + 0.2)
        arn = ecs.register_task_definition(**definition)["taskDefinition"]["taskDefinitionArn"]
        ecs.deregister_task_definition(taskDefinition=arn)
    finally:
        iam.delete_role(RoleName=name)
