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
it points at our pool.
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import ClientError

from wpenv import aws
from wpenv.plan import TAG_ENVIRONMENT
from wpenv.reconcilers import identity
from wpenv.reconcilers.base import (
    MISSING,
    Context,
    Observation,
    PermanentError,
    TransientError,
)
from wpenv.reconcilers.user_pool import NOT_FOUND, describe_pool, environment_of, pool_id

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


def describe_domain(ctx: Context) -> dict[str, Any]:
    """DescribeUserPoolDomain of our prefix; empty when nobody holds it."""
    found = ctx.clients.cognito_idp.describe_user_pool_domain(Domain=ctx.names.user_pool_domain)
    return dict(found.get("DomainDescription") or {})


def owned_by_this_environment(ctx: Context, owner: str) -> bool:
    """Whether pool `owner` (not the current one) is also tagged with our environment."""
    described = describe_pool(ctx, owner)
    return described is not None and environment_of(described) == ctx.tags[TAG_ENVIRONMENT]


class UserPoolDomain:
    """Hosted Cognito domain prefix of one tenant's pool (condition group "Identity")."""

    kind = "UserPoolDomain"
    group = "Identity"

    def wanted(self, ctx: Context) -> bool:
        """Only with identity on."""
        return identity.enabled(ctx)

    def observe(self, ctx: Context) -> Observation:
        """Exists when our prefix points at our pool; ready once Cognito says ACTIVE."""
        pid = pool_id(ctx)
        if not pid:
            return MISSING
        described = describe_domain(ctx)
        prefix = ctx.names.user_pool_domain
        if described.get("UserPoolId") != pid:
            return MISSING
        status = str(described.get("Status") or "ACTIVE")
        return Observation(
            exists=True,
            ids={"userPoolDomain": prefix},
            ready=status == "ACTIVE",
            detail="" if status == "ACTIVE" else NOT_ACTIVE.format(prefix=prefix, status=status),
            facts={"userPoolDomain": prefix},
        )

    def create(self, ctx: Context) -> None:
        """Attach our prefix to our pool, moving it from an older pool of ours if need be."""
        pid = ctx.ids.get("userPoolId")
        if not pid:
            raise TransientError("WaitingForDependencies", WAITING)
        prefix = ctx.names.user_pool_domain
        idp = ctx.clients.cognito_idp
        owner = describe_domain(ctx).get("UserPoolId")
        if owner == pid:
            ctx.remember({"userPoolDomain": prefix})
            return
        if owner:
            if not owned_by_this_environment(ctx, str(owner)):
                raise PermanentError("DomainTaken", TAKEN.format(prefix=prefix, owner=owner))
            idp.delete_user_pool_domain(Domain=prefix, UserPoolId=str(owner))
            log.info("moving domain %s from older pool %s to %s", prefix, owner, pid)
        try:
            idp.create_user_pool_domain(Domain=prefix, UserPoolId=str(pid))
        except ClientError as exc:
            # Another account holds the prefix: Cognito says so only in the message.
            if aws.error_code(exc) == INVALID and "exist" in str(exc).lower():
                raise PermanentError(
                    "DomainTaken", TAKEN_ELSEWHERE.format(prefix=prefix)
                ) from exc
            raise
        ctx.remember({"userPoolDomain": prefix})
        log.info("created domain %s for user pool %s", prefix, pid)

    def update(self, ctx: Context, observed: Observation) -> None:
        """Nothing to change: a prefix domain has no settings of ours."""

    def delete(self, ctx: Context) -> None:
        """Delete our prefix, but only while it points at our pool."""
        pid = pool_id(ctx)
        if not pid or describe_domain(ctx).get("UserPoolId") != pid:
            return
        try:
            ctx.clients.cognito_idp.delete_user_pool_domain(
                Domain=ctx.names.user_pool_domain, UserPoolId=pid
            )
        except ClientError as exc:
            if not aws.is_not_found(exc, NOT_FOUND):
                raise
        log.info("deleted domain %s of user pool %s", ctx.names.user_pool_domain, pid)
