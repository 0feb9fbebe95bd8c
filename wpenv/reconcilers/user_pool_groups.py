"""The user pool's groups: one per WordPress role the tenant hands out (HLD 3.3).

The spec lists the groups (Admin, Editor, Viewer by default); their order is their
precedence (0 first), which is also the order in which a user's groups are matched to a
WordPress role at sign-in. Groups carry no tags, so the operator marks the ones it made in
their description; a group not in the spec is removed only when it bears that mark; a group
a person made by hand is left alone.

Deleting the groups one by one would lose who belonged to which before the pool's "users"
archive hook reads it, so `remove` deletes nothing: the groups go with the pool, after the
export, and so they have no orphan listing of their own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from wpenv import aws
from wpenv.reconcilers import identity
from wpenv.reconcilers.base import Context, Observation, Resource
from wpenv.reconcilers.user_pool import NOT_FOUND, PAGE, pool_id
from wpenv.settings import Settings
from wpenv.sso import role_for, unique

log = logging.getLogger(__name__)

MARK = "Managed by {operator}"
DESCRIPTION = MARK + ": members sign in to WordPress as {role}."
STALE = "groups {missing} missing or different, {extra} no longer in the spec"
EXISTS = "GroupExistsException"


@dataclass(frozen=True)
class PoolGroups:
    """The groups one pool holds, by name (what observe finds)."""

    pool_id: str
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)


def desired_groups(ctx: Context) -> dict[str, dict[str, Any]]:
    """Group name -> its description and precedence (the spec's order, from 0)."""
    return {
        name: {
            "Description": DESCRIPTION.format(operator=ctx.settings.operator_name,
                                              role=role_for(name)),
            "Precedence": index,
        }
        for index, name in enumerate(unique(ctx.spec.identity.groups))
    }


def is_ours(ctx: Context, group: dict[str, Any]) -> bool:
    """Whether the operator made the group (its description bears the mark)."""
    mark = MARK.format(operator=ctx.settings.operator_name)
    return str(group.get("Description") or "").startswith(mark)


def list_groups(clients: Any, pid: str) -> dict[str, dict[str, Any]]:
    """Name -> group of the pool; ResourceNotFoundException when the pool is gone."""
    idp = clients.cognito_idp
    groups: dict[str, dict[str, Any]] = {}
    token: str | None = None
    while True:
        page = idp.list_groups(UserPoolId=pid, Limit=PAGE,
                               **({"NextToken": token} if token else {}))
        groups.update({str(g["GroupName"]): dict(g) for g in page.get("Groups") or []})
        token = page.get("NextToken")
        if not token:
            return groups


def plan_changes(
    ctx: Context, have: dict[str, dict[str, Any]]
) -> tuple[list[str], list[str], list[str]]:
    """(groups to create, groups to update, groups to delete) against what the pool has."""
    wanted = desired_groups(ctx)
    create = [name for name in wanted if name not in have]
    update = [
        name
        for name, settings in wanted.items()
        if name in have
        and any(have[name].get(key) != value for key, value in settings.items())
    ]
    delete = [name for name, group in have.items() if name not in wanted and is_ours(ctx, group)]
    return create, update, delete


class UserPoolGroups(
    Resource, group="Identity", gone={NOT_FOUND}, needs=("UserPool",), goes_with="UserPool"
):
    """The spec's groups in the tenant's user pool (condition group "Identity").

    Gone: the pool (ListGroups) or one group (DeleteGroup) is not there.
    """

    def wanted(self, ctx: Context) -> bool:
        """Only with identity on."""
        return identity.enabled(ctx)

    def find_by_name(self, ctx: Context) -> PoolGroups | None:
        """The groups of the environment's pool; None when there is no pool."""
        pid = pool_id(ctx)
        if not pid:
            return None
        try:
            return PoolGroups(pid, list_groups(ctx.clients, pid))
        except ClientError as exc:
            if self.is_gone(exc):
                return None
            raise

    def inspect(self, ctx: Context, found: PoolGroups) -> Observation:
        """Exists once the pool holds a group of ours (or the spec wants none).

        A pool without our groups is still `found`, so create knows what it holds.
        """
        wanted = desired_groups(ctx)
        ours = [n for n, g in found.groups.items() if n in wanted or is_ours(ctx, g)]
        create, update, delete = plan_changes(ctx, found.groups)
        stale = bool(create or update or delete)
        return Observation(
            exists=bool(ours) or not wanted,
            up_to_date=not stale,
            ready=bool(ours) or not wanted,
            detail=STALE.format(missing=sorted(create + update), extra=sorted(delete))
            if stale
            else "",
            found=found,
        )

    def create(self, ctx: Context, observed: Observation) -> None:
        """Create the missing groups and correct the others (adopts what exists).

        Without an observation (a pass that did not look) it looks first: group names are
        unique per pool, but the pool must be known.
        """
        self._converge(ctx, observed.found or self.find(ctx))

    def update(self, ctx: Context, observed: Observation) -> None:
        """Create, correct and remove groups until the pool's match the spec."""
        self._converge(ctx, observed.found)

    def _converge(self, ctx: Context, found: PoolGroups | None) -> None:
        if found is None:
            return  # no pool: the pool step before this one reports why
        idp = ctx.clients.cognito_idp
        pid = found.pool_id
        wanted = desired_groups(ctx)
        create, update, delete = plan_changes(ctx, found.groups)
        for name in create:
            try:
                idp.create_group(UserPoolId=pid, GroupName=name, **wanted[name])
            except ClientError as exc:
                if aws.error_code(exc) != EXISTS:
                    raise
                idp.update_group(UserPoolId=pid, GroupName=name, **wanted[name])
        for name in update:
            idp.update_group(UserPoolId=pid, GroupName=name, **wanted[name])
        for name in delete:
            try:
                idp.delete_group(UserPoolId=pid, GroupName=name)
            except ClientError as exc:
                if not self.is_gone(exc):
                    raise
        if create or update or delete:
            log.info("groups of pool %s: %d created, %d corrected, %d removed", pid,
                     len(create), len(update), len(delete))

    def remove(self, clients: Any, settings: Settings, found: PoolGroups) -> None:
        """Nothing: the groups go with the pool, after its archive hook read the members."""
