"""What ECS checks while it starts a task, against moto's backends: why a task would stop.

Before a Fargate task's container runs, the agent pulls the image, fetches the secrets the
container takes and sets up its log driver, all with the task execution role (Amazon ECS
Developer Guide, "Amazon ECS task execution IAM role"; "Send Amazon ECS logs to
CloudWatch"). When one of them fails the task stops with a ResourceInitializationError
and never runs; a deployment whose tasks keep stopping is failed by the circuit breaker.
moto checks none of it, so the simulator asks here, in the order the agent works:

1. the failure injection: an image ending in `:broken` cannot be pulled;
2. every Secrets Manager secret in a container's `secrets` must exist, not be scheduled
   for deletion, and the execution role must allow `secretsmanager:GetSecretValue` on it;
3. an `awslogs` container's log group (`awslogs-group`, in `awslogs-region`) must exist,
   unless `awslogs-create-group` is "true" and the execution role may
   `logs:CreateLogGroup` (then the agent creates it, as ECS does); and the role must
   allow `logs:CreateLogStream` in it.

`start_failure` answers with the stopped reason ECS gives (the ResourceInitializationError
text of a stopped task, with this task's role and secret in it), or None when the task
starts. It reads, and only creates a log group where ECS itself would.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from moto.backends import get_backend

from tests.platform import iam_eval

__all__ = ["BROKEN_SUFFIX", "TaskContext", "start_failure"]

log = logging.getLogger("wpenv.simulator")

BROKEN_SUFFIX = ":broken"
Backend = Any  # a moto region backend

IMAGE_NOT_FOUND = (
    "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to "
    "resolve ref {image}: not found"
)
_SECRET = (
    "ResourceInitializationError: unable to pull secrets or registry auth: execution "
    "resource retrieval failed: unable to retrieve secret from asm: service call has been "
    "retried 1 time(s): failed to fetch secret {secret} from secrets manager: operation "
    "error Secrets Manager: GetSecretValue, https response error StatusCode: 400, "
    "RequestID: {request}, api error {error}"
)
SECRET_DENIED = (
    "AccessDeniedException: User: {principal} is not authorized to perform: "
    "secretsmanager:GetSecretValue on resource: {secret} because no identity-based policy "
    "allows the secretsmanager:GetSecretValue action"
)
SECRET_MISSING = "ResourceNotFoundException: Secrets Manager can't find the specified secret."
SECRET_DELETED = (
    "InvalidRequestException: You can't perform this operation on the secret because it "
    "was marked for deletion."
)
LOG_GROUP_MISSING = (
    "ResourceInitializationError: failed to validate logger args: The task cannot find the "
    "Amazon CloudWatch log group defined in the task definition. There is a connection issue "
    "between the task and Amazon CloudWatch. Check your network configuration. : signal: killed"
)
LOGS_DENIED = (
    "ResourceInitializationError: failed to validate logger args: {step}: "
    "AccessDeniedException: User: {principal} is not authorized to perform: {action} on "
    "resource: {resource} because no identity-based policy allows the {action} action "
    ": exit status 1"
)


@dataclass(frozen=True)
class TaskContext:
    """Where one task starts: account, region, partition, its execution role, its id."""

    account: str
    region: str
    partition: str
    execution_role: str  # ARN, "" when the task definition names none
    task_id: str

    @property
    def principal(self) -> str:
        """The session ECS's agent uses: the execution role assumed for this task."""
        name = self.execution_role.rpartition("/")[2] or "none"
        return f"arn:{self.partition}:sts::{self.account}:assumed-role/{name}/{self.task_id}"

    def may(self, action: str, resource: str) -> bool:
        """Whether the execution role allows `action` on `resource` (no role: never)."""
        documents = iam_eval.role_documents(self.execution_role) if self.execution_role else None
        return documents is not None and iam_eval.allowed(documents, action, resource)


def _secret_arn(value_from: str, where: TaskContext) -> tuple[str, str, str] | None:
    """(account, region, secret id) of a `valueFrom`; None for a Parameter Store one.

    A Secrets Manager reference is the secret's ARN, optionally followed by
    `:json-key:version-stage:version-id`, or the bare name of a secret in the task's region.
    """
    if value_from.startswith("arn:"):
        parts = value_from.split(":")
        if len(parts) < 7 or parts[2] != "secretsmanager":
            return None
        return parts[4], parts[3], ":".join(parts[:7])
    if value_from.startswith("/") or "parameter/" in value_from:
        return None
    return where.account, where.region, value_from


def _secret_failure(value_from: str, where: TaskContext) -> str | None:
    """Why the agent cannot fetch one secret; None when it can."""
    located = _secret_arn(value_from, where)
    if located is None:
        return None
    account, region, secret_id = located
    secret = _backend("secretsmanager", account, region)
    found = secret.secrets.get(secret_id) if secret is not None else None
    if found is None:
        error = SECRET_MISSING
    elif found.is_deleted():
        error = SECRET_DELETED
    elif not where.may("secretsmanager:GetSecretValue", str(found.arn)):
        error = SECRET_DENIED.format(principal=where.principal, secret=found.arn)
    else:
        return None
    return _SECRET.format(secret=secret_id, request=uuid.uuid4(), error=error)


def _log_failure(container: dict[str, Any], where: TaskContext) -> str | None:
    """Why the `awslogs` driver of one container cannot start; None when it can."""
    config = container.get("logConfiguration") or {}
    if config.get("logDriver") != "awslogs":
        return None
    options = config.get("options") or {}
    group = str(options.get("awslogs-group") or "")
    region = str(options.get("awslogs-region") or where.region)
    logs = _backend("logs", where.account, region)
    if logs is None or not group:
        return LOG_GROUP_MISSING
    arn = f"arn:{where.partition}:logs:{region}:{where.account}:log-group:{group}"
    if group not in logs.groups:
        if str(options.get("awslogs-create-group", "")).lower() != "true":
            return LOG_GROUP_MISSING
        if not where.may("logs:CreateLogGroup", f"{arn}:log-stream:"):
            return LOGS_DENIED.format(step="create log group", principal=where.principal,
                                      action="logs:CreateLogGroup", resource=f"{arn}:log-stream:")
        logs.ensure_log_group(group)  # what the agent does with awslogs-create-group
        log.info("created log group %s for task %s (awslogs-create-group)", group, where.task_id)
    prefix = str(options.get("awslogs-stream-prefix") or "")
    stream = "/".join(p for p in (prefix, str(container.get("name") or ""), where.task_id) if p)
    resource = f"{arn}:log-stream:{stream}"
    if not where.may("logs:CreateLogStream", resource):
        return LOGS_DENIED.format(step="create stream", principal=where.principal,
                                  action="logs:CreateLogStream", resource=resource)
    return None


def start_failure(ecs: Backend, task_definition: str | None) -> str | None:
    """The reason a task of `task_definition` stops before it runs; None when it starts.

    An unknown task definition is left alone (None), as the simulator always did.
    """
    if not task_definition:
        return None
    try:
        definition = ecs.describe_task_definition(task_definition)
    except Exception:  # deleted or never registered: nothing to judge
        return None
    containers: list[dict[str, Any]] = list(definition.container_definitions or [])
    where = TaskContext(
        account=str(ecs.account_id), region=str(ecs.region_name),
        partition=str(definition.arn).split(":")[1] or "aws",
        execution_role=str(getattr(definition, "execution_role_arn", None) or ""),
        task_id=uuid.uuid4().hex,
    )
    for container in containers:
        image = str(container.get("image") or "")
        if image.endswith(BROKEN_SUFFIX):
            return IMAGE_NOT_FOUND.format(image=image)
    for container in containers:
        for secret in container.get("secrets") or []:
            reason = _secret_failure(str(secret.get("valueFrom") or ""), where)
            if reason is not None:
                return reason
    for container in containers:
        reason = _log_failure(container, where)
        if reason is not None:
            return reason
    return None


def _backend(service: str, account: str, region: str) -> Backend | None:
    """moto's backend of `service` for one account and region; None if it has none."""
    try:
        return get_backend(service)[account][region]  # type: ignore[call-overload]
    except Exception:  # a region that service does not know
        return None
