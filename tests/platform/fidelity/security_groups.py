"""EC2 refuses to delete a security group that a network interface still uses.

DeleteSecurityGroup of a group associated with an instance or a network interface fails
with DependencyViolation "resource sg-... has a dependent object" (EC2 API Reference,
DeleteSecurityGroup; "Error codes for the Amazon EC2 API"). A Fargate task's interface
carries the service's security groups and is detached and deleted only after the task
stopped ("Allocate a network interface for an Amazon ECS task"), so a tenant's group stays
in use for a while after its service is deleted. moto deletes any group at once; the
simulator keeps the tasks' interfaces in moto's EC2 backend for
WPENV_ENI_RELEASE_SECONDS after the tasks stop, and this rule refuses meanwhile.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from moto.ec2.models import ec2_backends

from tests.platform.fidelity import scope

if TYPE_CHECKING:  # the package imports this module while it defines Refusal
    from tests.platform.fidelity import Refusal

ACTION = "DeleteSecurityGroup"
CODE = "DependencyViolation"
MESSAGE = "resource {group} has a dependent object"


def _params(request: Any) -> dict[str, str]:
    parsed = parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)
    return {key: values[0] for key, values in parsed.items()}


def group_id(ec2: Any, params: dict[str, str]) -> str | None:
    """The id of the group a DeleteSecurityGroup names (by GroupId, or by GroupName)."""
    if params.get("GroupId"):
        return params["GroupId"]
    name = params.get("GroupName")
    group = ec2.get_security_group_by_name_or_id(name) if name else None
    return str(group.id) if group is not None else None


def users(ec2: Any, group: str) -> list[str]:
    """Ids of the network interfaces in `ec2` (moto's region backend) that use `group`."""
    return [str(eni.id) for eni in list(ec2.enis.values())
            if any(g.id == group for g in list(eni.group_set))]


def deletion_refusal(ec2: Any, params: dict[str, str]) -> Refusal | None:
    """EC2's answer to deleting a group still in use, or None to let moto delete it."""
    from tests.platform.fidelity import Refusal  # noqa: PLC0415 (see the import above)

    if ec2 is None:
        return None
    group = group_id(ec2, params)
    if group is None or not users(ec2, group):
        return None
    return Refusal(400, CODE, MESSAGE.format(group=group), protocol="ec2")


def refuse(request: Any) -> Refusal | None:
    """Refuse DeleteSecurityGroup while network interfaces use the group."""
    if request.action != ACTION or request.target:
        return None
    return deletion_refusal(scope.backend(ec2_backends, request), _params(request))
