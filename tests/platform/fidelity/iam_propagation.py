"""IAM's eventual consistency as ECS meets it: a role created a moment ago cannot be assumed.

IAM changes take time to reach every endpoint (IAM User Guide, "Troubleshoot IAM": changes
are not always immediately visible), and ECS checks that it can assume the roles a task
definition names. moto's roles work the instant CreateRole returns, so an operator that
treats ECS's refusal as permanent would pass here and fail on AWS. For
WPENV_IAM_PROPAGATION_SECONDS (default 2; 0 turns it off) after a role's creation,
RegisterTaskDefinition naming it as task or execution role is refused with ECS's
ClientException "ECS was unable to assume the role '<arn>' that was provided for this task.
...". The creation time is the role's own in moto's IAM backend (this module runs in the
moto server's process), so a deleted and re-created role waits again.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import TYPE_CHECKING, Any

from moto.core.utils import utcnow
from moto.iam.models import iam_backends

if TYPE_CHECKING:  # the package imports this module while it defines Refusal
    from tests.platform.fidelity import Refusal

PROPAGATION_ENV = "WPENV_IAM_PROPAGATION_SECONDS"
DEFAULT_PROPAGATION_SECONDS = 2.0
TARGET = "AmazonEC2ContainerServiceV20141113.RegisterTaskDefinition"
ROLE_FIELDS = ("taskRoleArn", "executionRoleArn")
CODE = "ClientException"
MESSAGE = (
    "ECS was unable to assume the role '{arn}' that was provided for this task. Please verify "
    "that the role being passed has the proper trust relationship and permissions and that "
    "your IAM user has permissions to pass this role."
)


def propagation_seconds() -> float:
    """How long a new role stays unusable by ECS (read each time: tests change it)."""
    raw = os.environ.get(PROPAGATION_ENV, "").strip()
    return float(raw) if raw else DEFAULT_PROPAGATION_SECONDS


def role_created(arn: str) -> datetime | None:
    """When the role `arn` (arn:aws:iam::<account>:role/<path/>name) was made; None: unknown."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "iam" or not parts[5].startswith("role/"):
        return None
    name = parts[5].rsplit("/", 1)[-1]
    try:
        role = iam_backends[parts[4]][parts[1]].get_role(name)
    except Exception:  # moto's NotFoundException, or an account/partition it does not know
        return None
    created: datetime = role.create_date
    return created


def too_new(arn: str, now: datetime, window: float) -> bool:
    """Whether `arn` names a role younger than `window` seconds at `now` (moto's naive UTC)."""
    created = role_created(arn)
    return created is not None and (now - created).total_seconds() < window


def registration_refusal(body: dict[str, Any], now: datetime, window: float) -> Refusal | None:
    """ECS's answer to a task definition naming a role IAM has not propagated yet."""
    from tests.platform.fidelity import Refusal  # noqa: PLC0415 (see the import above)

    if window <= 0:
        return None
    for field in ROLE_FIELDS:
        arn = str(body.get(field) or "")
        if arn and too_new(arn, now, window):
            return Refusal(400, CODE, MESSAGE.format(arn=arn))
    return None


def refuse(request: Any) -> Refusal | None:
    """Refuse RegisterTaskDefinition while one of its roles is still propagating."""
    if request.target != TARGET:
        return None
    return registration_refusal(request.json(), utcnow(), propagation_seconds())
