"""The user pool's groups: one per WordPress role the tenant hands out (HLD 3.3).

The spec lists the groups (Admin, Editor, Viewer by default); their order is their
precedence (0 first), which is also the order in which a user's groups are matched to a
WordPress role at sign-in. Groups carry no tags, so the operator marks the ones it made in
their description; a group not in the spec is removed only when it bears that mark; a group
a person made by hand is left alone.

Deleting the groups one by one would lose who belonged to which before the pool's export
reads it, so `delete` does nothing: the groups go with the pool, after the export.
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import ClientError

from wpenv import aws
from wpenv.reconcilers import identity
from wpenv.reconcilers.base import MISSING, Context, Observation
from wpenv.reconcilers.user_pool import NOT_FOUND, PAGE, pool_id
from wpenv.sso import role_for, unique

log = logging.getLogger(__name__)

MARK = "Managed by {operator}"
DESCRIPTION = MARK + ": members sign in to WordPress as {role}."
STALE = "groups {missing} missing or different, {extra} no longer in the spec"
EXISTS = "GroupExistsException"


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


def list_groups(ctx: Context, pid: str) -> dict[str, dict[str, Any]] | None:
    """Name -> group of the pool, or None when the pool is gone."""
    idp = ctx.clients.cognito_idp
    groups: dict[str, dict[str, Any]] = {}
    token: str | None = None
    try:
        while True:
            page = idp.list_groups(UserPoolId=pid, Limit=PAGE,
                                   **({"NextToken": token} if token else {}))
            groups.update({str(g["GroupName"]): dict(g) for g in page.get("Groups") or []})
            token = page.get("NextToken")
            if not token:
                return groups
    except ClientError as exc:
        if aws.is_not_found(exc, NOT_FOUND):
            return None
        raise


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


class UserPoolGroups:
    """The spec's groups in the tenant's user pool (condition group "Identity")."""

    kind = "UserPoolGroups"
    group = "Identity"

    def wanted(self, ctx: Context) -> bool:
        """Only with identity on."""
        return identity.enabled(ctx)

    def observe(self, ctx: Context) -> Observation:
        """Exists once the pool holds a group of ours (or the spec wants none)."""
        pid = pool_id(ctx)
        have = list_groups(ctx, pid) if pid else None
        if have is None:
            return MISSING
        wanted = desired_groups(ctx)
        ours = [name for name, group in have.items() if name in wanted or is_ours(ctx, group)]
        if wanted and not ours:
            return MISSING
        create, update, delete = plan_changes(ctx, have)
        stale = bool(create or update or delete)
        return Observation(
            exists=True,
            up_to_date=not stale,
            detail=STALE.format(missing=sorted(create + update), extra=sorted(delete))
            if stale
            else "",
            facts={"userPoolGroups": list(wanted)},
        )

    def create(self, ctx: Context) -> None:
        """Create the missing groups and correct the others (adopts what exists)."""
        self._converge(ctx)

    def update(self, ctx: Context, observed: Observation) -> None:
        """Create, correct and remove groups until the pool's match the spec."""
        self._converge(ctx)

    def _converge(self, ctx: Context) -> None:
        pid = pool_id(ctx)
        have = list_groups(ctx, pid) if pid else None
        if pid is None or have is None:
            return  # no pool: the pool step before this one reports why
        idp = ctx.clients.cognito_idp
        wanted = desired_groups(ctx)
        create, update, delete = plan_changes(ctx, have)
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
                if not aws.is_not_found(exc, NOT_FOUND):
                    raise
        if create or update or delete:
            log.info("groups of pool %s: %d created, %d corrected, %d removed", pid,
                     len(create), len(update), len(delete))

    def delete(self, ctx: Context) -> None:
        """Nothing: the groups go with the pool, after its export recorded the members."""
