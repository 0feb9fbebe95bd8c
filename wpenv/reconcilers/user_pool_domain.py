"""The pool's hosted domain: `<prefix>.auth.<region>.amazoncognito.com`, where users sign in.

Prefixes are global across every AWS account, which is why `names.user_pool_domain` is
salted with the environment's namespace/name. Ownership is checked here rather than left to
Cognito: DescribeUserPoolDomain says which pool holds a prefix, and
- our pool holds it: done;
- another pool of this environment holds it (an older pool, e.g. after a lost status): the
  domain moves to the current pool;
- anything else holds it: PermanentError DomainTaken, and nothing is changed.
The local emulator lets a second pool silently take a prefix over and deletes a pool with
its domain still attached, so both checks matter there too. A domain is deleted only when
it points at our pool: observe records who holds the prefix (`Holder`), and `remove` acts
only when that is the pool it was looked up for. The domain goes with the pool otherwise
(the pool's own delete removes it first), so it has no orphan listing of its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from wpenv import aws, reasons
from wpenv.errors import PermanentError, TransientError
from wpenv.plan import TAG_ENVIRONMENT
from wpenv.reconcilers import identity
from wpenv.reconcilers.base import Context, Observation, Resource
from wpenv.reconcilers.user_pool import NOT_FOUND, describe_pool, environment_of, pool_id
from wpenv.settings import Settings

log = logging.getLogger(__name__)

INVALID = "InvalidParameterException"
TAKEN = (
    "the hosted domain prefix {prefix} belongs to user pool {owner}, which is not this "
    "environment's; remove that domain or rename the environment"
)
TAKEN_ELSEWHERE = (
    "the hosted domain prefix {prefix} is taken by another AWS account; rename the environment"
)
WAITING = "the hosted domain needs the user pool recorded first"
NOT_ACTIVE = "domain {prefix} is {status}"


@dataclass(frozen=True)
class Holder:
    """Who holds our prefix (what observe finds): `owner` may be another pool than `pool_id`."""

    prefix: str
    pool_id: str  # the environment's pool, which the prefix should point at
    owner: str  # the pool DescribeUserPoolDomain says holds it
    status: str = "ACTIVE"

    @property
    def ours(self) -> bool:
        """Whether the prefix points at the environment's pool."""
        return self.owner == self.pool_id


def describe_domain(ctx: Context) -> dict[str, Any]:
    """DescribeUserPoolDomain of our prefix; empty when nobody holds it."""
    found = ctx.clients.cognito_idp.describe_user_pool_domain(Domain=ctx.names.user_pool_domain)
    return dict(found.get("DomainDescription") or {})


def owned_by_this_environment(ctx: Context, owner: str) -> bool:
    """Whether pool `owner` (not the current one) is also tagged with our environment."""
    described = describe_pool(ctx, owner)
    return described is not None and environment_of(described) == ctx.tags[TAG_ENVIRONMENT]


class UserPoolDomain(
    Resource, group="Identity", ids=("userPoolDomain",), gone={NOT_FOUND}, needs=("UserPool",)
):
    """Hosted Cognito domain prefix of one tenant's pool (condition group "Identity")."""

    def wanted(self, ctx: Context) -> bool:
        """Only with identity on."""
        return identity.enabled(ctx)

    def find(self, ctx: Context) -> Holder | None:
        """Who holds our prefix, once the pool is known; None while nobody does.

        The prefix is deterministic, so there is no id-then-name: one DescribeUserPoolDomain,
        skipped once it was ACTIVE on our pool while the pool (which observe describes
        anyway) still names it as its domain.
        """
        pid = pool_id(ctx)
        if not pid:
            return None
        mine = ctx.owner(self.kind)
        kept: Holder | None = ctx.observations.kept(mine, pid)
        if kept is not None and (describe_pool(ctx, pid) or {}).get("Domain") == kept.prefix:
            return kept  # the pool still names it: nothing changed since it was ACTIVE
        described = describe_domain(ctx)
        owner = described.get("UserPoolId")
        if not owner:
            return None
        status = str(described.get("Status") or "ACTIVE")
        holder = Holder(ctx.names.user_pool_domain, pid, str(owner), status)
        if holder.ours and status == "ACTIVE":
            ctx.observations.keep(mine, pid, holder)
        return holder

    def inspect(self, ctx: Context, found: Holder) -> Observation:
        """Exists when our prefix points at our pool; ready once Cognito says ACTIVE."""
        if not found.ours:
            return Observation(exists=False, up_to_date=False, ready=False, found=found)
        active = found.status == "ACTIVE"
        return Observation(
            exists=True,
            ids={"userPoolDomain": found.prefix},
            ready=active,
            detail="" if active else NOT_ACTIVE.format(prefix=found.prefix, status=found.status),
            found=found,
        )

    def create(self, ctx: Context, observed: Observation) -> None:
        """Attach our prefix to our pool, moving it from an older pool of ours if need be."""
        pid = ctx.ids.get("userPoolId")
        if not pid:
            raise TransientError(reasons.WAITING_FOR_DEPENDENCIES, WAITING)
        prefix = ctx.names.user_pool_domain
        holder: Holder | None = observed.found
        owner = holder.owner if holder is not None else None
        if owner == pid:
            ctx.remember({"userPoolDomain": prefix})
            return
        idp = ctx.clients.cognito_idp
        if owner:
            if not owned_by_this_environment(ctx, owner):
                raise PermanentError(reasons.DOMAIN_TAKEN, TAKEN.format(prefix=prefix, owner=owner))
            idp.delete_user_pool_domain(Domain=prefix, UserPoolId=owner)
            log.info("moving domain %s from older pool %s to %s", prefix, owner, pid)
        try:
            idp.create_user_pool_domain(Domain=prefix, UserPoolId=str(pid))
        except ClientError as exc:
            # Another account holds the prefix: Cognito says so only in the message.
            if aws.error_code(exc) == INVALID and "exist" in str(exc).lower():
                raise PermanentError(
                    reasons.DOMAIN_TAKEN, TAKEN_ELSEWHERE.format(prefix=prefix)
                ) from exc
            raise
        ctx.remember({"userPoolDomain": prefix})
        log.info("created domain %s for user pool %s", prefix, pid)

    def update(self, ctx: Context, observed: Observation) -> None:
        """Nothing to change: a prefix domain has no settings of ours."""

    def remove(self, clients: Any, settings: Settings, found: Holder) -> None:
        """Delete the prefix, but only while it points at the pool it was looked up for."""
        if not found.ours:
            return
        clients.cognito_idp.delete_user_pool_domain(Domain=found.prefix, UserPoolId=found.pool_id)
        log.info("deleted domain %s of user pool %s", found.prefix, found.pool_id)
