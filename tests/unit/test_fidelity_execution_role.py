"""The fidelity rule for RegisterTaskDefinition without an execution role, without a server."""

from __future__ import annotations

import json
from typing import Any

from tests.platform.fidelity import RULES, Request, execution_role

ROLE = "arn:aws:iam::123456789012:role/wpenv-acme-exec"
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:wpenv/acme/database-AbCdEf"
AWSLOGS = {"logDriver": "awslogs", "options": {"awslogs-group": "/wpenv/acme",
                                               "awslogs-region": "us-east-1"}}


def _body(*, role: str | None = None, fargate: bool = True, **container: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "family": "wpenv-acme",
        "containerDefinitions": [{"name": "wordpress", "image": "wordpress:6.8", **container}],
    }
    if fargate:
        body["requiresCompatibilities"] = ["FARGATE"]
    if role is not None:
        body["executionRoleArn"] = role
    return body


def test_secrets_without_an_execution_role_are_refused_as_ecs_does() -> None:
    refusal = execution_role.registration_refusal(
        _body(secrets=[{"name": "P", "valueFrom": f"{SECRET}:password::"}])
    )
    assert refusal is not None
    assert (refusal.status, refusal.code) == (400, "ClientException")
    assert refusal.message == (
        "When you are specifying container secrets, you must also specify a value for "
        "'executionRoleArn'."
    )
    assert not refusal.query  # ECS speaks JSON


def test_awslogs_on_fargate_without_an_execution_role_is_refused() -> None:
    refusal = execution_role.registration_refusal(_body(logConfiguration=AWSLOGS))
    assert refusal is not None and refusal.code == "ClientException"
    assert "support log driver awslogs" in refusal.message
    # On EC2 the container instance role writes the logs: no execution role needed.
    assert execution_role.registration_refusal(
        _body(fargate=False, logConfiguration=AWSLOGS)) is None


def test_with_an_execution_role_or_without_secrets_and_logs_it_registers() -> None:
    secrets = [{"name": "P", "valueFrom": SECRET}]
    assert execution_role.registration_refusal(
        _body(role=ROLE, secrets=secrets, logConfiguration=AWSLOGS)) is None
    assert execution_role.registration_refusal(_body()) is None
    assert execution_role.registration_refusal(_body(secrets=[])) is None


def test_the_rule_is_installed_and_looks_only_at_register_task_definition() -> None:
    assert execution_role in RULES
    body = json.dumps(_body(secrets=[{"name": "P", "valueFrom": SECRET}])).encode()

    def request(target: str) -> Request:
        return Request(target, target.rpartition(".")[2], "ecs", "/", body, {})

    assert execution_role.refuse(request(execution_role.TARGET)) is not None
    assert execution_role.refuse(
        request("AmazonEC2ContainerServiceV20141113.CreateService")) is None
