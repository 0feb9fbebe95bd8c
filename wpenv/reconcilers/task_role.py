"""The tenant's IAM task role: what its WordPress application may do, and nothing else.

The application needs one AWS permission: to mount the shared file system, only through
the tenant's own access point (the task definition mounts EFS with IAM authorization).
Everything ECS does to start a task (pull the image, inject the secrets, write the logs)
is the execution role's (wpenv.reconcilers.execution_role), so the code inside the
container can read neither the secrets' other keys nor anyone's logs. The shared role
work (trust, one owned inline policy, adoption, removal, the orphan listing) is
wpenv.reconcilers.iam_role's.
"""

from __future__ import annotations

from typing import Any

from wpenv import reasons
from wpenv.errors import TransientError
from wpenv.reconcilers.base import Context
from wpenv.reconcilers.iam_role import (
    POLICY_NAME,
    TenantRole,
    allow,
    desired_trust_policy,
    parse_document,
    policy,
    role_name,
    same_document,
)

__all__ = [
    "POLICY_NAME",
    "TaskRole",
    "desired_policy",
    "desired_trust_policy",
    "parse_document",
    "role_name",
    "same_document",
]

WAITING_FOR_ACCESS_POINT = (
    "the task role of {tenant} names its access point, which is not recorded yet"
)


def desired_policy(ctx: Context, account: str, partition: str = "aws") -> dict[str, Any]:
    """The inline policy: mount this tenant's access point, nothing more.

    Raises TransientError until the access point's ARN is recorded (it is created first).
    """
    access_point_arn = ctx.ids.get("accessPointArn")
    if not access_point_arn:
        raise TransientError(
            reasons.WAITING_FOR_ACCESS_POINT,
            WAITING_FOR_ACCESS_POINT.format(tenant=ctx.names.tenant),
        )
    region = ctx.settings.region
    file_system = f"file-system/{ctx.settings.file_system_id}"
    mount = ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
    return policy(allow(
        "MountOwnAccessPoint", mount,
        f"arn:{partition}:elasticfilesystem:{region}:{account}:{file_system}",
        {"StringEquals": {"elasticfilesystem:AccessPointArn": access_point_arn}},
    ))


class TaskRole(TenantRole, ids=("taskRoleArn",), needs=("AccessPoint",)):
    """IAM task role of one tenant's WordPress tasks (condition group "Permissions").

    It needs the access point: its inline policy names the access point's ARN.
    """

    suffix = "-task"
    description = "wpenv tenant {tenant}: ECS task role (what WordPress may do)"
    document = staticmethod(desired_policy)

    def role_name(self, ctx: Context) -> str:
        """`wpenv-<tenant>-task`."""
        return ctx.names.task_role
