"""The one list of resource kinds, in creation order.

Converge walks it forwards; rollback, removing what the spec switched off, deprovisioning
and the orphan cleanup walk it backwards; Retain and the orphan scan read it. Adding a kind
is one module and one line here.

The order (HLD 3.1 with four deliberate differences, all invisible from outside):
- the placement on a load balancer of the pool comes first: it holds nothing in AWS, the
  tenant's URL (Cognito's callback URLs, the task definition) follows it, and a full pool
  makes the environment wait before it holds anything;
- then the Cognito pieces: a user pool is the one resource with a small account
  quota (HLD 8), and an environment that waits for a free pool must hold nothing
  half-built meanwhile; the task definition also names the client secret;
- the secret precedes the database: the password is born in Secrets Manager, so a crash
  between the two never leaves a MySQL user whose password nobody knows;
- the target group and rule precede the service: ECS refuses a service whose target group
  is not yet attached to a load balancer.
The site secret (WordPress's keys, salts and admin), the log group and the execution role
come right before the task definition: a task starts only once its log group exists and
its execution role may read the secrets it names, and that role names every secret by
ARN, so it follows them.
Each kind's `needs` says which of these are hard dependencies; `check` proves the order
honours them, at import, so a wrong order cannot ship.
"""

from __future__ import annotations

from collections.abc import Sequence

from wpenv.reconcilers.access_point import AccessPoint
from wpenv.reconcilers.autoscaling import Autoscaling
from wpenv.reconcilers.base import Resource
from wpenv.reconcilers.client_secret import ClientSecret
from wpenv.reconcilers.database import Database
from wpenv.reconcilers.db_secret import DatabaseSecret
from wpenv.reconcilers.execution_role import ExecutionRole
from wpenv.reconcilers.listener_rule import ListenerRule
from wpenv.reconcilers.log_group import LogGroup
from wpenv.reconcilers.placement import Placement
from wpenv.reconcilers.security_group import SecurityGroup
from wpenv.reconcilers.service import Service
from wpenv.reconcilers.site_secret import SiteSecret
from wpenv.reconcilers.target_group import TargetGroup
from wpenv.reconcilers.task_definition import TaskDefinition
from wpenv.reconcilers.task_role import TaskRole
from wpenv.reconcilers.user_pool import UserPool
from wpenv.reconcilers.user_pool_client import UserPoolClient
from wpenv.reconcilers.user_pool_domain import UserPoolDomain
from wpenv.reconcilers.user_pool_groups import UserPoolGroups

BAD_ORDER = "{kind} needs {need}, which {where}"
SHARED_KEY = "status key {key} is declared by both {first} and {second}"
UNDECLARED = "{kind} declares no {what}"


def kinds() -> list[Resource]:
    """A fresh instance of every kind, in creation order."""
    return [
        Placement(),
        UserPool(),
        UserPoolGroups(),
        UserPoolDomain(),
        UserPoolClient(),
        ClientSecret(),
        AccessPoint(),
        SecurityGroup(),
        TaskRole(),
        DatabaseSecret(),
        Database(),
        SiteSecret(),
        LogGroup(),
        ExecutionRole(),
        TaskDefinition(),
        TargetGroup(),
        ListenerRule(),
        Service(),
        Autoscaling(),
    ]


def check(order: Sequence[Resource]) -> None:
    """Raise ValueError unless every kind comes after what it needs and owns its own ids."""
    seen: set[str] = set()
    owner: dict[str, str] = {}
    names = {k.kind for k in order}
    for resource in order:
        for need in resource.needs:
            if need not in seen:
                where = "comes later" if need in names else "is not in the registry"
                raise ValueError(BAD_ORDER.format(kind=resource.kind, need=need, where=where))
        for key in resource.ids:
            if key in owner:
                raise ValueError(SHARED_KEY.format(key=key, first=owner[key],
                                                   second=resource.kind))
            owner[key] = resource.kind
        seen.add(resource.kind)


def check_declarations(order: Sequence[Resource]) -> None:
    """Raise ValueError unless every kind names its condition group and, when it lives in
    AWS, its "gone" codes, and Retain can tag every retainable one."""
    for resource in order:
        missing = [what for what, lacks in (
            ("condition group", not getattr(resource, "group", "")),
            ('"gone" codes', resource.in_aws and not resource.gone),
            ("tag (yet is retainable)", resource.retainable and type(resource).tag is Resource.tag),
        ) if lacks]
        if missing:
            raise ValueError(UNDECLARED.format(kind=resource.kind, what=", ".join(missing)))


def by_name(name: str) -> Resource:
    """The kind called `name` (KeyError if there is none)."""
    return {k.kind: k for k in KINDS}[name]


KINDS: tuple[Resource, ...] = tuple(kinds())
check(KINDS)
check_declarations(KINDS)
