"""The platform refuses what ECS refuses, over boto3: a task definition with secrets or
Fargate awslogs but no execution role is not registered; a task whose log group is
missing, or whose execution role may not read its secret, never starts and its
deployment fails as a bad image's does. And the operator's LogGroup and ExecutionRole
kinds are what makes the same task start."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import MakeCtx, role_propagated
from tests.platform.fidelity.execution_role import AWSLOGS_NEEDS_ROLE, SECRETS_NEED_ROLE
from wpenv.reconcilers.base import MISSING, Context
from wpenv.reconcilers.execution_role import ExecutionRole
from wpenv.reconcilers.log_group import LogGroup

pytestmark = pytest.mark.e2e

TIMEOUT = 30.0


@dataclass
class Tenant:
    """A tenant's context with its database secret; what a test registers and runs."""

    ctx: Context
    services: list[str]

    def task_definition(self, *, execution_role: str | None, create_group: bool = False,
                        secrets: bool = True) -> dict[str, Any]:
        """RegisterTaskDefinition arguments of one awslogs container taking the secret."""
        options = {"awslogs-group": self.ctx.names.log_group,
                   "awslogs-region": self.ctx.settings.region,
                   "awslogs-stream-prefix": "wordpress"}
        if create_group:
            options["awslogs-create-group"] = "true"
        container: dict[str, Any] = {
            "name": "wordpress", "image": "wordpress:6.8-apache", "essential": True,
            "logConfiguration": {"logDriver": "awslogs", "options": options},
        }
        if secrets:
            container["secrets"] = [{"name": "WORDPRESS_DB_PASSWORD",
                                     "valueFrom": f"{self.ctx.ids['dbSecretArn']}:password::"}]
        args: dict[str, Any] = {
            "family": f"{self.ctx.names.task_family}-{uuid.uuid4().hex[:6]}",
            "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc",
            "cpu": "256", "memory": "512", "containerDefinitions": [container],
        }
        if execution_role:
            args["executionRoleArn"] = execution_role
        return args

    def run(self, task_definition: dict[str, Any]) -> dict[str, Any]:
        """Register it, run it as a one-task service; the service once its rollout ended."""
        ecs = self.ctx.clients.ecs
        arn = ecs.register_task_definition(**task_definition)["taskDefinition"][
            "taskDefinitionArn"]
        name = f"fidelity-{uuid.uuid4().hex[:8]}"
        ecs.create_service(
            cluster=self.ctx.settings.cluster_name, serviceName=name, taskDefinition=arn,
            desiredCount=1, launchType="FARGATE",
            networkConfiguration={"awsvpcConfiguration": {
                "subnets": list(self.ctx.settings.private_subnet_ids),
                "securityGroups": [self.ctx.settings.alb_security_group_id]}},
        )
        self.services.append(name)
        return _wait(lambda: self._described(name),
                     lambda s: s["deployments"][0]["rolloutState"] != "IN_PROGRESS")

    def _described(self, name: str) -> dict[str, Any]:
        found = self.ctx.clients.ecs.describe_services(
            cluster=self.ctx.settings.cluster_name, services=[name])["services"]
        return dict(found[0])


def _wait(read: Callable[[], dict[str, Any]],
          done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    deadline = time.monotonic() + TIMEOUT
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.25)


def _stopped_because(service: dict[str, Any]) -> str:
    """The stop reason the service's events tell (ECS: "was unable to place a task")."""
    told = [e["message"] for e in service["events"] if "unable to place a task" in e["message"]]
    return told[0] if told else ""


@pytest.fixture
def tenant(make_ctx: MakeCtx) -> Iterator[Tenant]:
    """A tenant with a database secret; services, roles, group and secret removed after."""
    ctx = make_ctx(identity={"enabled": False})
    secrets = ctx.clients.secretsmanager
    ctx.ids["dbSecretArn"] = secrets.create_secret(Name=ctx.names.db_secret,
                                                   SecretString="{}")["ARN"]
    # The execution role names the site secret too (salts and admin, injected by ARN).
    ctx.ids["siteSecretArn"] = secrets.create_secret(Name=ctx.names.site_secret,
                                                     SecretString="{}")["ARN"]
    made = Tenant(ctx, [])
    yield made
    for name in made.services:
        ctx.clients.ecs.delete_service(cluster=ctx.settings.cluster_name, service=name,
                                       force=True)
    ExecutionRole().ensure_absent(ctx)
    LogGroup().ensure_absent(ctx)
    for arn in (ctx.ids["dbSecretArn"], ctx.ids["siteSecretArn"]):
        secrets.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)


def _code(error: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    found = error.value.response["Error"]
    return str(found["Code"]), str(found["Message"])


def test_register_refuses_secrets_or_fargate_awslogs_without_an_execution_role(
    tenant: Tenant,
) -> None:
    ecs = tenant.ctx.clients.ecs
    with pytest.raises(ClientError) as error:
        ecs.register_task_definition(**tenant.task_definition(execution_role=None))
    assert _code(error) == ("ClientException", SECRETS_NEED_ROLE)
    with pytest.raises(ClientError) as error:
        ecs.register_task_definition(**tenant.task_definition(execution_role=None,
                                                              secrets=False))
    assert _code(error) == ("ClientException", AWSLOGS_NEEDS_ROLE)


def test_a_missing_log_group_fails_the_deployment_until_the_operator_makes_it(
    tenant: Tenant,
) -> None:
    ExecutionRole().create(tenant.ctx, MISSING)
    role = str(tenant.ctx.ids["executionRoleArn"])
    role_propagated(tenant.ctx)
    service = tenant.run(tenant.task_definition(execution_role=role))
    assert service["deployments"][0]["rolloutState"] == "FAILED"
    assert service["runningCount"] == 0
    reason = _stopped_because(service)
    assert "ResourceInitializationError: failed to validate logger args" in reason
    # awslogs-create-group without logs:CreateLogGroup (the operator grants none): refused.
    service = tenant.run(tenant.task_definition(execution_role=role, create_group=True))
    assert service["deployments"][0]["rolloutState"] == "FAILED"
    assert "logs:CreateLogGroup" in _stopped_because(service)

    LogGroup().create(tenant.ctx, MISSING)
    service = tenant.run(tenant.task_definition(execution_role=role))
    assert service["deployments"][0]["rolloutState"] == "COMPLETED"
    assert service["runningCount"] == 1


def test_a_secret_the_execution_role_may_not_read_fails_the_deployment(
    tenant: Tenant,
) -> None:
    ctx = tenant.ctx
    LogGroup().create(ctx, MISSING)
    ExecutionRole().create(ctx, MISSING)
    role_propagated(ctx)
    other = ctx.clients.secretsmanager.create_secret(
        Name=f"wpenv/{ctx.names.tenant}-other/database", SecretString="{}")["ARN"]
    try:
        definition = tenant.task_definition(execution_role=str(ctx.ids["executionRoleArn"]))
        definition["containerDefinitions"][0]["secrets"][0]["valueFrom"] = f"{other}:password::"
        service = tenant.run(definition)
        assert service["deployments"][0]["rolloutState"] == "FAILED"
        reason = _stopped_because(service)
        assert "unable to retrieve secret from asm" in reason
        assert "AccessDeniedException" in reason and other in reason
    finally:
        ctx.clients.secretsmanager.delete_secret(SecretId=other, ForceDeleteWithoutRecovery=True)

    # Its own secret, with the operator's execution role and log group: the task starts.
    service = tenant.run(tenant.task_definition(execution_role=str(ctx.ids["executionRoleArn"])))
    assert service["deployments"][0]["rolloutState"] == "COMPLETED"
