"""The tenant's own Cognito user pool (HLD 3.3, 6.1: one directory per tenant).

Sign-in is by e-mail address, only administrators create users (no self sign-up on a
company site), and the password policy is stricter than Cognito's default. Deletion
protection is ACTIVE: a pool holds the only copy of its users, so nothing but this module -
after it exported them - may delete it; the delete switches protection off as its last step
before DeleteUserPool.

Cognito pool names are not unique, so a pool is found by its recorded id, else by name
*and* the environment tag (UserPoolTags, read with DescribeUserPool: one call serves both).
A pool whose environment tag names another environment is never touched.

The account quota (HLD 8: 60 pools by default) is checked before a pool is created: at the
quota the step waits with a TransientError, and because the identity steps come first
nothing else of the environment is built meanwhile.

Delete exports first: every user (attributes, status, groups) and every group go to the
archive bucket as `<prefix>/users.json`, then the domain goes (Cognito refuses to delete a
pool that still has one), then the pool.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from wpenv import aws
from wpenv.archive.s3stream import encryption_args, s3_uri
from wpenv.plan import TAG_ENVIRONMENT, archive_prefix
from wpenv.reconcilers import identity
from wpenv.reconcilers.base import MISSING, Context, Observation, TransientError
from wpenv.reconcilers.task_definition import matches

log = logging.getLogger(__name__)

NOT_FOUND = "ResourceNotFoundException"
LIMIT_EXCEEDED = "LimitExceededException"
PAGE = 60  # the largest page ListUserPools / ListUsers / ListGroups return
EXPORT_NAME = "users.json"
EXPORT_FORMAT = "wpenv.users/v1"
# Attributes never exported, whatever a custom schema calls them.
SECRET_ATTRIBUTE = re.compile(r"password|secret|token|credential", re.IGNORECASE)

QUOTA_REACHED = (
    "{count} of quota {quota} user pools in use; the environment waits until one is freed "
    "or the quota (WPENV_USER_POOL_QUOTA) is raised"
)
NO_BUCKET = (
    "WPENV_ARCHIVE_BUCKET is not set: user pool {id} cannot be exported, so it is kept"
)
STALE = "user pool {id} differs from the plan in {fields}"

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


def differences(ctx: Context, described: Mapping[str, Any]) -> list[str]:
    """The changeable settings where the pool differs (extra tags or defaults are fine)."""
    wanted = desired_settings(ctx)
    return [key for key in COMPARED if not matches(wanted[key], described.get(key))]


def environment_of(described: Mapping[str, Any]) -> str | None:
    """The environment (namespace.name) a described pool's tag names, if any."""
    tags = described.get("UserPoolTags") or {}
    value = tags.get(TAG_ENVIRONMENT)
    return str(value) if value is not None else None


def describe_pool(ctx: Context, pid: str) -> dict[str, Any] | None:
    """DescribeUserPool, or None when there is no such pool."""
    try:
        return dict(ctx.clients.cognito_idp.describe_user_pool(UserPoolId=pid)["UserPool"])
    except ClientError as exc:
        if aws.is_not_found(exc, NOT_FOUND):
            return None
        raise


def list_pools(ctx: Context) -> list[dict[str, Any]]:
    """Every user pool of the account and region (id, name, creation date)."""
    idp = ctx.clients.cognito_idp
    pools: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = idp.list_user_pools(MaxResults=PAGE, **({"NextToken": token} if token else {}))
        pools.extend(dict(p) for p in page.get("UserPools") or [])
        token = page.get("NextToken")
        if not token:
            return pools


def find_pool(ctx: Context, pools: list[dict[str, Any]] | None = None) -> dict[str, Any] | None:
    """DescribeUserPool of the environment's pool, or None; read-only.

    The recorded id first (a pool without an environment tag is taken too: the record says
    it is ours); else the oldest pool of our name tagged with our environment.
    """
    mine = ctx.tags[TAG_ENVIRONMENT]
    recorded = ctx.ids.get("userPoolId")
    if recorded:
        described = describe_pool(ctx, str(recorded))
        if described is not None and environment_of(described) in (mine, None):
            return described
    named = [p for p in (list_pools(ctx) if pools is None else pools)
             if p.get("Name") == ctx.names.user_pool]
    for summary in sorted(named, key=lambda p: str(p.get("CreationDate", ""))):
        described = describe_pool(ctx, str(summary["Id"]))
        if described is not None and environment_of(described) == mine:
            return described
    return None


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
    found = find_pool(ctx)
    return str(found["Id"]) if found else None


def _paged(call: Any, key: str, token_name: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Items of a Cognito list call that pages with `token_name` (the APIs differ)."""
    token: str | None = None
    while True:
        page = call(**kwargs, **({token_name: token} if token else {}))
        yield from (dict(item) for item in page.get(key) or [])
        token = page.get(token_name)
        if not token:
            return


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else (str(value) if value else None)


def export_document(ctx: Context, described: Mapping[str, Any]) -> dict[str, Any]:
    """Every user and group of the pool, as archived (no password or secret attribute)."""
    idp = ctx.clients.cognito_idp
    pid = str(described["Id"])
    groups = list(_paged(idp.list_groups, "Groups", "NextToken", UserPoolId=pid, Limit=PAGE))
    members: dict[str, list[str]] = {}
    for group in groups:
        for user in _paged(idp.list_users_in_group, "Users", "NextToken", UserPoolId=pid,
                           GroupName=group["GroupName"], Limit=PAGE):
            members.setdefault(str(user["Username"]), []).append(str(group["GroupName"]))
    users = [
        {
            "username": str(user["Username"]),
            "attributes": {
                str(a["Name"]): a.get("Value")
                for a in user.get("Attributes") or []
                if not SECRET_ATTRIBUTE.search(str(a["Name"]))
            },
            "status": user.get("UserStatus"),
            "enabled": user.get("Enabled"),
            "created": _iso(user.get("UserCreateDate")),
            "groups": sorted(members.get(str(user["Username"]), [])),
        }
        for user in _paged(idp.list_users, "Users", "PaginationToken", UserPoolId=pid,
                           Limit=PAGE)
    ]
    return {
        "format": EXPORT_FORMAT,
        "userPoolId": pid,
        "userPoolName": described.get("Name"),
        "environment": f"{ctx.namespace}/{ctx.name}",
        "tenantId": ctx.names.tenant,
        "exportedAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "groups": [
            {
                "name": g["GroupName"],
                "description": g.get("Description"),
                "precedence": g.get("Precedence"),
            }
            for g in groups
        ],
        "users": users,
    }


def export_users(ctx: Context, described: Mapping[str, Any]) -> str | None:
    """Write the pool's users and groups to the archive bucket; their S3 URI, or None.

    Deprovisioning names the archive (`ctx.archive_key_prefix`) and always gets the file.
    Otherwise (identity switched off, a rollback) the export gets a fresh timestamped prefix
    of its own, and a pool without users - nothing to lose - is not exported.
    """
    document = export_document(ctx, described)
    if ctx.archive_key_prefix is None and not document["users"]:
        return None
    bucket = ctx.settings.archive_bucket
    if not bucket:
        raise TransientError("ArchiveBucketMissing", NO_BUCKET.format(id=described["Id"]))
    prefix = ctx.archive_key_prefix or archive_prefix(
        ctx.settings, ctx.namespace, ctx.name, datetime.now(UTC)
    )
    key = f"{prefix.rstrip('/')}/{EXPORT_NAME}"
    ctx.clients.s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(document, indent=1, sort_keys=True).encode(),
        ContentType="application/json",
        **encryption_args(ctx.settings.archive_kms_key_id),
    )
    uri = s3_uri(bucket, key)
    ctx.exported.append(uri)
    log.info("exported %d user(s) of pool %s to %s", len(document["users"]),
             described["Id"], uri)
    return uri


class UserPool:
    """Cognito user pool of one tenant (condition group "Identity")."""

    kind = "UserPool"
    group = "Identity"

    def wanted(self, ctx: Context) -> bool:
        """Only with identity on; switching it off exports the users and removes the pool."""
        return identity.enabled(ctx)

    def observe(self, ctx: Context) -> Observation:
        """Find the pool; stale when a changeable setting or one of our tags differs."""
        found = find_pool(ctx)
        if found is None:
            return MISSING
        stale = differences(ctx, found)
        return Observation(
            exists=True,
            up_to_date=not stale,
            ids={"userPoolId": str(found["Id"])},
            detail=STALE.format(id=found["Id"], fields=", ".join(stale)) if stale else "",
            facts={"userPoolName": found.get("Name")},
        )

    def create(self, ctx: Context) -> None:
        """Adopt our pool if it exists; else, below the quota, create it and record its id."""
        pools = list_pools(ctx)
        found = find_pool(ctx, pools)
        if found is not None:
            log.info("adopting user pool %s of %s", found["Id"], ctx.names.tenant)
            ctx.remember({"userPoolId": str(found["Id"])})
            if differences(ctx, found):
                self._update(ctx, str(found["Id"]))
            return
        quota = ctx.settings.user_pool_quota
        if len(pools) >= quota:
            raise TransientError(
                "UserPoolQuotaReached", QUOTA_REACHED.format(count=len(pools), quota=quota)
            )
        try:
            created = ctx.clients.cognito_idp.create_user_pool(**creation_settings(ctx))
        except ClientError as exc:
            # Another operator's (or person's) pool took the last one since we counted.
            if aws.error_code(exc) == LIMIT_EXCEEDED:
                raise TransientError(
                    "UserPoolQuotaReached", QUOTA_REACHED.format(count=quota, quota=quota)
                ) from exc
            raise
        created = created["UserPool"]
        ctx.remember({"userPoolId": str(created["Id"])})
        log.info("created user pool %s for %s", created["Id"], ctx.names.tenant)

    def update(self, ctx: Context, observed: Observation) -> None:
        """Send every changeable setting (UpdateUserPool resets the ones it is not sent)."""
        found = find_pool(ctx)
        if found is None:
            return
        ctx.remember({"userPoolId": str(found["Id"])})
        self._update(ctx, str(found["Id"]))

    def _update(self, ctx: Context, pid: str, protection: str = "ACTIVE") -> None:
        ctx.clients.cognito_idp.update_user_pool(
            UserPoolId=pid, **desired_settings(ctx, protection)
        )
        log.info("updated the settings of user pool %s", pid)

    def delete(self, ctx: Context) -> None:
        """Export users and groups, remove the domain, lift the protection, delete the pool."""
        found = find_pool(ctx)
        if found is None:
            return
        pid = str(found["Id"])
        export_users(ctx, found)
        idp = ctx.clients.cognito_idp
        for key in ("Domain", "CustomDomain"):
            domain = found.get(key)
            if not domain:
                continue
            try:
                idp.delete_user_pool_domain(Domain=str(domain), UserPoolId=pid)
            except ClientError as exc:
                if not aws.is_not_found(exc, NOT_FOUND):
                    raise
            log.info("deleted domain %s of user pool %s", domain, pid)
        if found.get("DeletionProtection") == "ACTIVE":
            self._update(ctx, pid, protection="INACTIVE")
        try:
            idp.delete_user_pool(UserPoolId=pid)
        except ClientError as exc:
            if not aws.is_not_found(exc, NOT_FOUND):
                raise
        log.info("deleted user pool %s of %s", pid, ctx.names.tenant)
