"""What ECS checks when a task starts (tests/platform/task_start.py), on moto in-process.

The rules read moto's IAM, Secrets Manager and CloudWatch Logs backends, so calling moto
in-process (mock_aws) is right here, as for the simulator's own tests. The last test puts
the operator's own execution role policy in and shows the task starting.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.backends import get_backend
from moto.core.models import DEFAULT_ACCOUNT_ID

from tests.platform import iam_eval
from tests.platform.task_start import LOG_GROUP_MISSING, start_failure
from wpenv.engine import make_context
from wpenv.reconcilers import execution_role, task_role
from wpenv.settings import Settings

REGION = "us-east-1"
GROUP = "/wpenv/acme"
TRUST = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
    "Action": "sts:AssumeRole"}]}


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


@dataclass
class World:
    """Clients, one execution role and one secret; task definitions registered per test."""

    iam: Any
    ecs: Any
    logs: Any
    secrets: Any
    role: str
    secret: str

    def allow(self, name: str, *statements: dict[str, Any]) -> None:
        self.iam.put_role_policy(RoleName="wpenv-acme-exec", PolicyName=name,
                                 PolicyDocument=_policy(*statements))

    def register(self, *, image: str = "wordpress:6.8", role: str | None = None,
                 secret: str | None = None, create_group: bool = False) -> str:
        options = {"awslogs-group": GROUP, "awslogs-region": REGION,
                   "awslogs-stream-prefix": "wordpress"}
        if create_group:
            options["awslogs-create-group"] = "true"
        found = self.ecs.register_task_definition(
            family="wpenv-acme", executionRoleArn=role or self.role,
            containerDefinitions=[{
                "name": "wordpress", "image": image, "memory": 512,
                "secrets": [{"name": "WORDPRESS_DB_PASSWORD",
                             "valueFrom": f"{secret or self.secret}:password::"}],
                "logConfiguration": {"logDriver": "awslogs", "options": options},
            }],
        )
        return str(found["taskDefinition"]["taskDefinitionArn"])

    def failure(self, task_definition: str) -> str | None:
        return start_failure(get_backend("ecs")[DEFAULT_ACCOUNT_ID][REGION], task_definition)


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        iam = boto3.client("iam", region_name=REGION)
        role = iam.create_role(RoleName="wpenv-acme-exec",
                               AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
        secrets = boto3.client("secretsmanager", region_name=REGION)
        secret = secrets.create_secret(Name="wpenv/acme/database", SecretString="{}")["ARN"]
        yield World(iam, boto3.client("ecs", region_name=REGION),
                    boto3.client("logs", region_name=REGION), secrets, role, secret)


def _secret_and_streams(world: World) -> None:
    world.allow("secrets", {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                            "Resource": world.secret})
    world.allow("streams", {"Effect": "Allow",
                            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                            "Resource": f"arn:aws:logs:{REGION}:{DEFAULT_ACCOUNT_ID}"
                                        f":log-group:{GROUP}:*"})


def test_a_secret_the_execution_role_may_not_read_stops_the_task(world: World) -> None:
    world.logs.create_log_group(logGroupName=GROUP)
    reason = world.failure(world.register())
    assert reason is not None
    assert reason.startswith("ResourceInitializationError: unable to pull secrets or registry "
                             "auth: execution resource retrieval failed: unable to retrieve "
                             "secret from asm")
    assert "AccessDeniedException" in reason and "secretsmanager:GetSecretValue" in reason
    assert "assumed-role/wpenv-acme-exec/" in reason and world.secret in reason
    assert "password" not in reason.split(world.secret)[-1]  # a JSON key, never a value


def test_a_missing_or_deleted_secret_stops_the_task(world: World) -> None:
    world.logs.create_log_group(logGroupName=GROUP)
    world.allow("all", {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                        "Resource": "*"})
    missing = world.secret.replace("database", "nothing")
    assert "ResourceNotFoundException" in str(world.failure(world.register(secret=missing)))
    world.secrets.delete_secret(SecretId=world.secret, RecoveryWindowInDays=7)
    assert "marked for deletion" in str(world.failure(world.register()))


def test_a_missing_log_group_stops_the_task(world: World) -> None:
    _secret_and_streams(world)
    assert world.failure(world.register()) == LOG_GROUP_MISSING
    world.logs.create_log_group(logGroupName=GROUP)
    assert world.failure(world.register()) is None


def test_awslogs_create_group_needs_logs_create_log_group(world: World) -> None:
    _secret_and_streams(world)
    reason = world.failure(world.register(create_group=True))
    assert reason is not None and "logs:CreateLogGroup" in reason
    assert reason.startswith("ResourceInitializationError: failed to validate logger args")
    assert not world.logs.describe_log_groups(logGroupNamePrefix=GROUP)["logGroups"]
    world.allow("create", {"Effect": "Allow", "Action": "logs:CreateLogGroup",
                           "Resource": "arn:aws:logs:*:*:log-group:/wpenv/*"})
    assert world.failure(world.register(create_group=True)) is None
    [group] = world.logs.describe_log_groups(logGroupNamePrefix=GROUP)["logGroups"]
    assert group["logGroupName"] == GROUP  # the agent made it, as ECS does


def test_a_role_that_may_not_open_a_log_stream_stops_the_task(world: World) -> None:
    world.logs.create_log_group(logGroupName=GROUP)
    world.allow("secrets", {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                            "Resource": world.secret})
    reason = world.failure(world.register())
    assert reason is not None and "logs:CreateLogStream" in reason


def test_no_role_no_start_and_the_broken_image_still_fails(world: World) -> None:
    world.logs.create_log_group(logGroupName=GROUP)
    gone = world.role.replace("wpenv-acme-exec", "wpenv-nobody-exec")
    assert "AccessDeniedException" in str(world.failure(world.register(role=gone)))
    _secret_and_streams(world)
    assert world.failure(world.register()) is None
    assert "CannotPullContainerError" in str(world.failure(world.register(image="wp:broken")))
    assert world.failure("arn:aws:ecs:us-east-1:123456789012:task-definition/none:1") is None


def _operator_context(world: World, policy_of: Any) -> None:
    """Put the operator's own policy (execution or task role) on the role."""
    ctx = make_context("ns", "acme", {"tenantId": "acme", "identity": {"enabled": False}},
                       settings=Settings(region=REGION, file_system_id="fs-1"), clients=None,
                       ids={"dbSecretArn": world.secret, "accessPointArn": "arn:ap",
                            "siteSecretArn": world.secret.replace("database", "wordpress")})
    world.iam.put_role_policy(RoleName="wpenv-acme-exec", PolicyName="wpenv-tenant",
                              PolicyDocument=json.dumps(policy_of(ctx, DEFAULT_ACCOUNT_ID)))


def test_the_operators_execution_role_starts_the_task_and_the_task_role_would_not(
    world: World,
) -> None:
    world.logs.create_log_group(logGroupName=GROUP)
    _operator_context(world, task_role.desired_policy)
    assert "AccessDeniedException" in str(world.failure(world.register()))
    _operator_context(world, execution_role.desired_policy)
    assert world.failure(world.register()) is None


def test_policy_evaluation_wildcards_case_and_deny() -> None:
    allow = {"Effect": "Allow", "Action": "Logs:Create*",
             "Resource": "arn:aws:logs:*:log-group:/w?/*"}
    docs = [{"Statement": [allow]}]
    assert iam_eval.allowed(docs, "logs:CreateLogStream", "arn:aws:logs:r:log-group:/wp/x")
    assert not iam_eval.allowed(docs, "logs:PutLogEvents", "arn:aws:logs:r:log-group:/wp/x")
    assert not iam_eval.allowed(docs, "logs:CreateLogStream", "arn:aws:logs:r:log-group:/w/x")
    assert not iam_eval.allowed(docs, "logs:CreateLogStream", "ARN:aws:logs:r:log-group:/wp/x")
    deny = {"Effect": "Deny", "NotAction": "s3:*", "NotResource": "arn:aws:logs:*:log-group:/x*"}
    assert not iam_eval.allowed([*docs, {"Statement": deny}], "logs:CreateLogStream",
                                "arn:aws:logs:r:log-group:/wp/x")
    conditional = {**allow, "Condition": {"StringEquals": {"aws:SourceAccount": "1"}}}
    assert not iam_eval.allowed([{"Statement": conditional}], "logs:CreateLogStream",
                                "arn:aws:logs:r:log-group:/wp/x")
    assert not iam_eval.allowed([], "logs:CreateLogStream", "*")
