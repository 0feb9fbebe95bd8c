"""The tenant's own Cognito user pool (HLD 3.3, 6.1: one directory per tenant).

Sign-in is by e-mail address, only administrators create users (no self sign-up on a
company site), and the password policy is stricter than Cognito's default. Deletion
protection is ACTIVE: a pool holds the only copy of its users, so it is deleted only by
`remove`, which the engine runs after the "users" archive hook exported them (`archive`);
`remove` itself exports nothing.

Cognito pool names are not unique, so a pool is found by its recorded id, else by name
*and* the environment tag (UserPoolTags, read with DescribeUserPool: one call serves both).
A pool whose environment tag names another environment is never touched.

Finding by name means listing the account's pools (ListUserPools, 60 a page: 17 calls at
1,000 tenants, in the UserPoolRead category's 15 a second). Done for every new tenant,
twice (observe, then the count before creating), that capped a large batch at about one
tenant every 2 s. The account's pools are therefore a *directory* of the shared
observation cache (rule 6 of wpenv.reconcilers.observations): listed once per TTL, and
kept current by this process's own creates and deletes, so a new tenant's look costs no
listing at all.

The account quota (HLD 8: 60 pools by default) is checked before a pool is created: at the
quota the step waits with a TransientError, and because the identity steps come first
nothing else of the environment is built meanwhile.

Deleting: the domains first (Cognito refuses to delete a pool that still has one), then
deletion protection lifted, then the pool. UpdateUserPool resets every setting it is not
sent, so lifting the protection (and tagging for Retain) sends the pool's current settings
as DescribeUserPool returned them (`update_arguments`), changing only what it means to.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

from botocore.exceptions import ClientError

from wpenv import aws, leases, metrics, reasons
from wpenv.errors import TransientError
from wpenv.plan import TAG_ENVIRONMENT, TAG_MANAGED_BY
from wpenv.reconcilers import identity
from wpenv.reconcilers.base import Context, Found, Observation, Resource
from wpenv.reconcilers.task_definition import matches
from wpenv.settings import Settings

log = logging.getLogger(__name__)

NOT_FOUND = "ResourceNotFoundException"
LIMIT_EXCEEDED = "LimitExceededException"
PAGE = 60  # the largest page ListUserPools returns
# The mutex Lease held while counting the account's pools and creating one.
COUNTING = "wpenv-user-pool-count"

QUOTA_REACHED = (
    "{count} of quota {quota} user pools in use; the environment waits until one is freed "
    "or the quota (WPENV_USER_POOL_QUOTA) is raised"
)
STALE = "user pool {id} differs from the plan in {fields}"
DESCRIBED = "cognito-idp:DescribeUserPool"
LISTED = "cognito-idp:ListUserPools"

# Settings UpdateUserPool can change; it resets every one it is not sent, so update always
# sends all of them (see `desired_settings`).
COMPARED = (
    "Policies",
    "AutoVerifiedAttributes",
    "AdminCreateUserConfig",
    "AccountRecoverySetting",
    "DeletionProtection",
    "UserPoolTags",
)

# Every parameter UpdateUserPool takes besides UserPoolId (the Cognito API reference), with
# the DescribeUserPool field holding its current value; only the name is spelt differently.
UPDATABLE: Mapping[str, str] = {
    "Policies": "Policies",
    "DeletionProtection": "DeletionProtection",
    "LambdaConfig": "LambdaConfig",
    "AutoVerifiedAttributes": "AutoVerifiedAttributes",
    "SmsVerificationMessage": "SmsVerificationMessage",
    "EmailVerificationMessage": "EmailVerificationMessage",
    "EmailVerificationSubject": "EmailVerificationSubject",
    "VerificationMessageTemplate": "VerificationMessageTemplate",
    "SmsAuthenticationMessage": "SmsAuthenticationMessage",
    "UserAttributeUpdateSettings": "UserAttributeUpdateSettings",
    "MfaConfiguration": "MfaConfiguration",
    "DeviceConfiguration": "DeviceConfiguration",
    "EmailConfiguration": "EmailConfiguration",
    "SmsConfiguration": "SmsConfiguration",
    "UserPoolTags": "UserPoolTags",
    "AdminCreateUserConfig": "AdminCreateUserConfig",
    "UserPoolAddOns": "UserPoolAddOns",
    "DcrConfiguration": "DcrConfiguration",
    "AccountRecoverySetting": "AccountRecoverySetting",
    "PoolName": "Name",
    "UserPoolTier": "UserPoolTier",
    "KeyConfiguration": "KeyConfiguration",
    "IssuerConfiguration": "IssuerConfiguration",
    "AcrConfiguration": "AcrConfiguration",
}
# DescribeUserPool still echoes this deprecated field, and UpdateUserPool refuses it
# ("Please use TemporaryPasswordValidityDays in PasswordPolicy instead"): the password
# policy carries the same value.
DEPRECATED_CREATE_USER_FIELD = "UnusedAccountValidityDays"


def desired_settings(ctx: Context, protection: str = "ACTIVE") -> dict[str, Any]:
    """The pool's changeable settings, as CreateUserPool and UpdateUserPool take them."""
    return {
        "Policies": {
            "PasswordPolicy": {
                "MinimumLength": 12,
                "RequireUppercase": True,
                "RequireLowercase": True,
                "RequireNumbers": True,
                "RequireSymbols": True,
                "TemporaryPasswordValidityDays": 7,
            }
        },
        "AutoVerifiedAttributes": ["email"],
        "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": True},
        "AccountRecoverySetting": {
            "RecoveryMechanisms": [{"Priority": 1, "Name": "verified_email"}]
        },
        "DeletionProtection": protection,
        "UserPoolTags": dict(ctx.tags),
    }


def creation_settings(ctx: Context) -> dict[str, Any]:
    """CreateUserPool's arguments: the changeable settings plus the fixed ones."""
    return {
        "PoolName": ctx.names.user_pool,
        # Fixed at creation: users sign in with their e-mail address, in any letter case.
        "UsernameAttributes": ["email"],
        "UsernameConfiguration": {"CaseSensitive": False},
        **desired_settings(ctx),
    }


def update_arguments(described: Mapping[str, Any], **changes: Any) -> dict[str, Any]:
    """UpdateUserPool's arguments that keep every current setting of a described pool.

    UpdateUserPool resets whatever it is not sent (tags, protection, triggers, messages),
    so a call meant to change one thing must send all the rest as DescribeUserPool
    returned it. `changes` (UpdateUserPool's own names) replace the current values.
    Pure: the result holds only keys UpdateUserPool accepts, and `described` is not changed.
    """
    args: dict[str, Any] = {"UserPoolId": str(described["Id"])}
    for param, field in UPDATABLE.items():
        value = described.get(field)
        if value is not None:
            args[param] = value
    admin = args.get("AdminCreateUserConfig")
    if isinstance(admin, Mapping) and DEPRECATED_CREATE_USER_FIELD in admin:
        args["AdminCreateUserConfig"] = {
            k: v for k, v in admin.items() if k != DEPRECATED_CREATE_USER_FIELD
        }
    args.update(changes)
    return args


def retagged(described: Mapping[str, Any], tags: Mapping[str, str]) -> dict[str, Any]:
    """UpdateUserPool's arguments that add `tags` to a described pool and change nothing else."""
    current = dict(described.get("UserPoolTags") or {})
    return update_arguments(described, UserPoolTags={**current, **tags})


def differences(ctx: Context, described: Mapping[str, Any]) -> list[str]:
    """The changeable settings where the pool differs (extra tags or defaults are fine)."""
    wanted = desired_settings(ctx)
    return [key for key in COMPARED if not matches(wanted[key], described.get(key))]


def environment_of(described: Mapping[str, Any]) -> str | None:
    """The environment (namespace.name) a described pool's tag names, if any."""
    tags = described.get("UserPoolTags") or {}
    value = tags.get(TAG_ENVIRONMENT)
    return str(value) if value is not None else None


def _describe(clients: Any, pid: str) -> dict[str, Any] | None:
    """DescribeUserPool, or None when there is no such pool."""
    try:
        return dict(clients.cognito_idp.describe_user_pool(UserPoolId=pid)["UserPool"])
    except ClientError as exc:
        if aws.error_code(exc) == NOT_FOUND:
            return None
        raise


def describe_pool(ctx: Context, pid: str) -> dict[str, Any] | None:
    """DescribeUserPool, or None when there is no such pool; shared within the TTL by the
    steps of this environment (Cognito has no bulk describe), until the pool is written."""
    found: dict[str, Any] | None = ctx.observations.read(
        ctx.owner(UserPool.kind), DESCRIBED, pid, lambda: _describe(ctx.clients, pid)
    )
    return found


def list_pools(ctx: Context) -> list[dict[str, Any]]:
    """Every user pool of the account and region (id, name, creation date), from the
    directory: as listed within the TTL, with this process's creates and deletes since."""
    listed = ctx.observations.listing(
        LISTED, lambda: {str(p["Id"]): p for p in account_pools(ctx.clients, ctx.settings)})
    return list(listed.values())


def account_pools(clients: Any, settings: Settings) -> list[dict[str, Any]]:
    """Every user pool of the account and region; the quota gauge takes each count."""
    idp = clients.cognito_idp
    pools: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = idp.list_user_pools(MaxResults=PAGE, **({"NextToken": token} if token else {}))
        pools.extend(dict(p) for p in page.get("UserPools") or [])
        token = page.get("NextToken")
        if not token:
            metrics.set_user_pools(len(pools), settings.user_pool_quota)
            return pools


def pool_id(ctx: Context) -> str | None:
    """The pool's id for the other identity steps: as recorded, else looked up (read-only).

    With identity off there is no look-up (a ListUserPools over the whole account each):
    the pool step finds the pool on its own, and deleting it takes its groups, client and
    domain along, so the steps before it have nothing to find.
    """
    recorded = ctx.ids.get("userPoolId")
    if recorded:
        return str(recorded)
    if not identity.enabled(ctx):
        return None
    found = UserPool().find(ctx)
    return str(found["Id"]) if found else None


class UserPool(
    Resource,
    group="Identity",
    ids=("userPoolId",),
    gone={NOT_FOUND},
    archive="users",
    retainable=True,
):
    """Cognito user pool of one tenant (condition group "Identity")."""

    def wanted(self, ctx: Context) -> bool:
        """Only with identity on; switching it off archives the users and removes the pool."""
        return identity.enabled(ctx)

    def find_by_id(self, ctx: Context, recorded: str) -> dict[str, Any] | None:
        """The recorded pool, unless its environment tag names another environment.

        A pool without an environment tag is taken: the record says it is ours.
        """
        described = describe_pool(ctx, recorded)
        if described is not None and environment_of(described) in (ctx.tags[TAG_ENVIRONMENT],
                                                                    None):
            return described
        return None

    def find_by_name(
        self, ctx: Context, pools: list[dict[str, Any]] | None = None
    ) -> dict[str, Any] | None:
        """The oldest pool of our name tagged with our environment (names are not unique)."""
        mine = ctx.tags[TAG_ENVIRONMENT]
        listed = list_pools(ctx) if pools is None else pools
        named = [p for p in listed if p.get("Name") == ctx.names.user_pool]
        for summary in sorted(named, key=lambda p: str(p.get("CreationDate", ""))):
            described = _describe(ctx.clients, str(summary["Id"]))
            if described is not None and environment_of(described) == mine:
                return described
        return None

    def inspect(self, ctx: Context, found: dict[str, Any]) -> Observation:
        """Stale when a changeable setting or one of our tags differs."""
        stale = differences(ctx, found)
        return Observation(
            exists=True,
            up_to_date=not stale,
            ids={"userPoolId": str(found["Id"])},
            detail=STALE.format(id=found["Id"], fields=", ".join(stale)) if stale else "",
            found=found,
        )

    def create(self, ctx: Context, observed: Observation) -> None:
        """Adopt the pool observe found; else, below the quota, create it and record its id.

        Pool names are not unique, so CreateUserPool would silently make a second pool of
        our name. The account's pools are listed anyway, to count them against the quota;
        that list also shows a pool of ours that a stale observation missed. Count and
        creation are one critical section across operator processes (a mutex Lease when
        coordinated), so two of them cannot both take the last pool of the quota.
        """
        with leases.current().exclusive(COUNTING) as guard:
            self._create(ctx, observed, guard)

    def _create(self, ctx: Context, observed: Observation, guard: object) -> None:
        """`create`, inside the critical section."""
        pools = list_pools(ctx) if observed.found is None else []
        found = observed.found or self.find_by_name(ctx, pools)
        if found is not None:
            log.info("adopting user pool %s of %s", found["Id"], ctx.names.tenant)
            ctx.remember({"userPoolId": str(found["Id"])})
            if differences(ctx, found):
                self._update(ctx, str(found["Id"]))
            return
        in_use = len(pools)
        quota = ctx.settings.user_pool_quota
        if in_use >= quota:
            raise TransientError(
                reasons.USER_POOL_QUOTA_REACHED, QUOTA_REACHED.format(count=in_use, quota=quota)
            )
        leases.still_held(guard)  # a lost mutex: another process may have counted too
        try:
            created = ctx.clients.once("cognito-idp").create_user_pool(
                **creation_settings(ctx))
        except ClientError as exc:
            # Another operator's (or person's) pool took the last one since we counted.
            if aws.error_code(exc) == LIMIT_EXCEEDED:
                raise TransientError(
                    reasons.USER_POOL_QUOTA_REACHED, QUOTA_REACHED.format(count=quota, quota=quota)
                ) from exc
            ctx.observations.relist(LISTED)  # a 5xx may still have made the pool
            raise
        except Exception:
            ctx.observations.relist(LISTED)  # no answer (a timeout): it may exist now
            raise
        created = created["UserPool"]
        ctx.remember({"userPoolId": str(created["Id"])})
        summary = {k: created.get(k) for k in ("Id", "Name", "CreationDate")}
        self._count(ctx, ctx.observations.listed(LISTED, str(created["Id"]), summary))
        log.info("created user pool %s for %s", created["Id"], ctx.names.tenant)

    @staticmethod
    def _count(ctx: Context, in_use: int | None) -> None:
        """The quota gauge, when the directory knows the new count (else its next load)."""
        if in_use is not None:
            metrics.set_user_pools(in_use, ctx.settings.user_pool_quota)

    def update(self, ctx: Context, observed: Observation) -> None:
        """Send every changeable setting (UpdateUserPool resets the ones it is not sent)."""
        pid = str(observed.found["Id"])
        ctx.remember({"userPoolId": pid})
        self._update(ctx, pid)

    def _update(self, ctx: Context, pid: str) -> None:
        ctx.clients.cognito_idp.update_user_pool(UserPoolId=pid, **desired_settings(ctx))
        log.info("updated the settings of user pool %s", pid)

    def remove(self, clients: Any, settings: Settings, found: dict[str, Any]) -> None:
        """Domains first (a pool with one cannot go), protection lifted, then the pool.

        Exports nothing: the engine's "users" hook archived the users before this runs.
        Lifting the protection keeps every other setting (`update_arguments`), so should
        the delete fail the pool still carries its tags for the next pass or orphan scan.
        """
        idp = clients.cognito_idp
        pid = str(found["Id"])
        for key in ("CustomDomain", "Domain"):
            domain = found.get(key)
            if not domain:
                continue
            try:
                idp.delete_user_pool_domain(Domain=str(domain), UserPoolId=pid)
            except ClientError as exc:
                if not self.is_gone(exc):
                    raise
                continue  # gone already; the pool may still be there
            log.info("deleted domain %s of user pool %s", domain, pid)
        if found.get("DeletionProtection") == "ACTIVE":
            idp.update_user_pool(**update_arguments(found, DeletionProtection="INACTIVE"))
        idp.delete_user_pool(UserPoolId=pid)
        log.info("deleted user pool %s", pid)

    def delete(self, ctx: Context, observed: Observation) -> None:
        """`remove`, and the directory (and the quota gauge) one pool fewer."""
        try:
            super().delete(ctx, observed)
        except Exception:
            ctx.observations.relist(LISTED)  # half-done: the next look lists again
            raise
        if observed.found is not None:
            self._count(ctx, ctx.observations.unlisted(LISTED, str(observed.found["Id"])))

    def tag(self, ctx: Context, recorded: str, tags: Mapping[str, str]) -> None:
        """Merge `tags` into the pool's, keeping its current settings (ResourceNotFound: gone).

        UpdateUserPool rather than TagResource, which moto does not implement for pools.
        """
        idp = ctx.clients.cognito_idp
        described = idp.describe_user_pool(UserPoolId=recorded)["UserPool"]
        idp.update_user_pool(**retagged(described, tags))

    def managed(self, clients: Any, settings: Settings) -> Iterator[Found]:
        """Every pool with our managed-by tag (UserPoolTags: one DescribeUserPool each)."""
        pages = clients.cognito_idp.get_paginator("list_user_pools").paginate(
            PaginationConfig={"PageSize": PAGE}
        )
        ids = [str(pool["Id"]) for page in pages for pool in page.get("UserPools", [])]
        for pid in ids:
            described = _describe(clients, pid)
            if described is None:
                continue
            found = self._found(described)
            if found.tags.get(TAG_MANAGED_BY) == settings.operator_name:
                yield found

    @staticmethod
    def _found(described: dict[str, Any]) -> Found:
        return Found(
            str(described["Id"]),
            described,
            {str(k): str(v) for k, v in (described.get("UserPoolTags") or {}).items()},
            {
                "name": described.get("Name"),
                "domain": described.get("Domain"),
                "customDomain": described.get("CustomDomain"),
                "users": described.get("EstimatedNumberOfUsers"),
            },
        )

    def refresh(self, clients: Any, settings: Settings, item: Found) -> Found | None:
        """The pool with its current tags and domains; None when gone."""
        described = _describe(clients, item.id)
        return None if described is None else self._found(described)
