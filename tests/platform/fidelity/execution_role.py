"""ECS RegisterTaskDefinition as AWS answers it: what needs a task execution role.

ECS uses the task execution role to read the secrets a container takes (`secrets`) and,
on Fargate, to write through the `awslogs` log driver (Amazon ECS Developer Guide,
"Amazon ECS task execution IAM role"). A task definition that needs the role but names
none cannot work, so ECS refuses to register it (ClientException); moto registers it.
Refused here, with ECS's messages:
- a container with `secrets` and no `executionRoleArn`: "When you are specifying container
  secrets, you must also specify a value for 'executionRoleArn'.";
- a Fargate task definition with an `awslogs` container and no `executionRoleArn`:
  "Fargate requires task definition to have execution role ARN to support log driver
  awslogs.".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the package imports this module while it defines Refusal
    from tests.platform.fidelity import Refusal

TARGET = "AmazonEC2ContainerServiceV20141113.RegisterTaskDefinition"
CODE = "ClientException"
SECRETS_NEED_ROLE = (
    "When you are specifying container secrets, you must also specify a value for "
    "'executionRoleArn'."
)
AWSLOGS_NEEDS_ROLE = (
    "Fargate requires task definition to have execution role ARN to support log driver "
    "awslogs."
)


def _containers(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in body.get("containerDefinitions") or [] if isinstance(c, dict)]


def _fargate(body: dict[str, Any]) -> bool:
    return "FARGATE" in (body.get("requiresCompatibilities") or [])


def _uses_awslogs(container: dict[str, Any]) -> bool:
    config = container.get("logConfiguration") or {}
    return isinstance(config, dict) and config.get("logDriver") == "awslogs"


def registration_refusal(body: dict[str, Any]) -> Refusal | None:
    """ECS's answer to a task definition that needs an execution role and names none."""
    from tests.platform.fidelity import Refusal  # noqa: PLC0415 (see the import above)

    if body.get("executionRoleArn"):
        return None
    containers = _containers(body)
    if any(container.get("secrets") for container in containers):
        return Refusal(400, CODE, SECRETS_NEED_ROLE)
    if _fargate(body) and any(_uses_awslogs(container) for container in containers):
        return Refusal(400, CODE, AWSLOGS_NEEDS_ROLE)
    return None


def refuse(request: Any) -> Refusal | None:
    """Refuse RegisterTaskDefinition requests that need an execution role and name none."""
    if request.target != TARGET:
        return None
    return registration_refusal(request.json())
