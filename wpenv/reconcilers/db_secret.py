"""The tenant's database credentials in Secrets Manager: where its MySQL password is born.

This step runs *before* the database step, a deliberate swap of the HLD's order: the
password is generated here, once, when the secret is created, and the database step reads
it back from Secrets Manager to create (or repair) the MySQL user. A crash between the two
steps therefore leaves at worst a secret with no user yet, never a MySQL user whose
password nobody knows. The password is never logged, compared or put into an Observation;
only the connection fields (host, port, username, dbname) are compared and rewritten.

The value has the shape AWS's MySQL rotation functions expect, so when
`db_rotation_lambda_arn` is set rotation is switched on (every 30 days). It is switched on
without an immediate rotation: the MySQL user does not exist yet when the secret is created,
and the rotation function would fail to log in. Deletion is forced (no recovery window) so
a rollback or a deprovision can re-create the same name at once; a secret found scheduled
for deletion (an older rollback, a person) is restored instead of failing the create.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from wpenv import aws
from wpenv.reconcilers.base import MISSING, Context, Observation, TransientError, tag_diff

log = logging.getLogger(__name__)

NOT_FOUND = "ResourceNotFoundException"
EXISTS = "ResourceExistsException"
INVALID_REQUEST = "InvalidRequestException"
ROTATION_DAYS = 30
PASSWORD_BYTES = 32  # token_urlsafe(32): 43 characters of [A-Za-z0-9_-]
FIELDS = ("engine", "host", "port", "username", "dbname")

DESCRIPTION = "MySQL credentials of WordPress environment {namespace}/{name}"
STALE_FIELDS = "secret {name} has other {fields} than the plan"
STALE_NO_CREDENTIAL = "secret {name} holds no password"
STALE_ROTATION = "secret {name} has rotation {actual}, the settings want {wanted}"
STALE_TAGS = "secret {name} lacks tags {keys}"
UNREADABLE = "secret {name} does not hold a JSON object"
SCHEDULED = "secret {name} is scheduled for deletion; the next create restores it"
DELETION_PENDING = "secret {name} is still being deleted; trying again shortly"
MASTER_UNSET = "WPENV_DB_MASTER_SECRET_ARN is not set: the shared database is unknown"


def read_credentials(clients: Any, arn: str) -> dict[str, Any]:
    """The JSON object in a secret's current value (a tenant's or the RDS master's).

    The database step uses it for both; the result holds a password, so never log it.
    """
    value = clients.secretsmanager.get_secret_value(SecretId=arn).get("SecretString") or "{}"
    parsed = json.loads(value)
    if not isinstance(parsed, dict):
        raise ValueError(UNREADABLE.format(name=arn))
    return parsed


def master_endpoint(ctx: Context) -> dict[str, Any]:
    """Host and port of the shared server, from the RDS master secret (nothing else of it)."""
    if not ctx.settings.db_master_secret_arn:
        raise TransientError("MasterSecretMissing", MASTER_UNSET)
    master = read_credentials(ctx.clients, ctx.settings.db_master_secret_arn)
    return {"host": str(master["host"]), "port": int(master["port"])}


def desired_fields(ctx: Context, endpoint: Mapping[str, Any]) -> dict[str, Any]:
    """Every field of the secret value except the password (no I/O)."""
    return {
        "engine": "mysql",
        "host": str(endpoint["host"]),
        "port": int(endpoint["port"]),
        "username": ctx.names.database_user,
        "dbname": ctx.names.database,
    }


def desired_rotation(ctx: Context) -> dict[str, Any] | None:
    """The `RotateSecret` arguments, or None when rotation is off in the settings."""
    if not ctx.settings.db_rotation_lambda_arn:
        return None
    return {
        "RotationLambdaARN": ctx.settings.db_rotation_lambda_arn,
        "RotationRules": {"AutomaticallyAfterDays": ROTATION_DAYS},
    }


def new_password() -> str:
    """A fresh random password: URL-safe characters only, harmless in any connection string."""
    return secrets.token_urlsafe(PASSWORD_BYTES)


def field_differences(wanted: Mapping[str, Any], value: Mapping[str, Any]) -> list[str]:
    """Names of the non-secret fields whose value differs (port compared as a number)."""
    diff = []
    for key in FIELDS:
        have: Any = value.get(key)
        if key == "port":
            try:
                have = int(have)
            except (TypeError, ValueError):
                have = None
        if have != wanted[key]:
            diff.append(key)
    return diff


def rotation_matches(wanted: Mapping[str, Any] | None, described: Mapping[str, Any]) -> bool:
    """Whether the rotation settings DescribeSecret echoes are the ones we want."""
    enabled = bool(described.get("RotationEnabled"))
    if wanted is None:
        return not enabled
    days = (described.get("RotationRules") or {}).get("AutomaticallyAfterDays")
    return (
        enabled
        and described.get("RotationLambdaARN") == wanted["RotationLambdaARN"]
        and days == wanted["RotationRules"]["AutomaticallyAfterDays"]
    )


def missing_tags(ctx: Context, described: Mapping[str, Any]) -> dict[str, str]:
    """Our tags the secret lacks or carries with another value."""
    return tag_diff(ctx.tags, described)


def _describe(ctx: Context, secret_id: str) -> dict[str, Any] | None:
    try:
        return dict(ctx.clients.secretsmanager.describe_secret(SecretId=secret_id))
    except ClientError as exc:
        if aws.is_not_found(exc, NOT_FOUND):
            return None
        raise


def find_secret(ctx: Context) -> dict[str, Any] | None:
    """DescribeSecret of the recorded ARN, else of the deterministic name (may be deleted)."""
    recorded = ctx.ids.get("dbSecretArn")
    if recorded:
        found = _describe(ctx, str(recorded))
        if found is not None and found.get("Name") == ctx.names.db_secret:
            return found
    return _describe(ctx, ctx.names.db_secret)


def _value(ctx: Context, arn: str) -> dict[str, Any] | None:
    """The current value, or None when it is not a JSON object (a hand-made mess)."""
    try:
        return read_credentials(ctx.clients, arn)
    except ValueError:  # json.JSONDecodeError is a ValueError
        return None


class DatabaseSecret:
    """Secrets Manager secret with one tenant's MySQL credentials (condition "Database")."""

    kind = "DatabaseSecret"
    group = "Database"

    def observe(self, ctx: Context) -> Observation:
        """Stale when host/port/username/dbname, a password, tags or rotation differ."""
        described = find_secret(ctx)
        if described is None:
            return MISSING
        name = ctx.names.db_secret
        if described.get("DeletedDate"):
            return Observation(
                exists=False, up_to_date=False, ready=False, detail=SCHEDULED.format(name=name)
            )
        arn = str(described["ARN"])
        value = _value(ctx, arn)
        wanted = desired_fields(ctx, master_endpoint(ctx))
        rotation = desired_rotation(ctx)
        problems = []
        if value is None:
            problems.append(UNREADABLE.format(name=name))
        else:
            fields = field_differences(wanted, value)
            if fields:
                problems.append(STALE_FIELDS.format(name=name, fields=", ".join(fields)))
            if not value.get("password"):
                problems.append(STALE_NO_CREDENTIAL.format(name=name))
        if not rotation_matches(rotation, described):
            problems.append(
                STALE_ROTATION.format(
                    name=name,
                    actual="on" if described.get("RotationEnabled") else "off",
                    wanted="on" if rotation else "off",
                )
            )
        tags = missing_tags(ctx, described)
        if tags:
            problems.append(STALE_TAGS.format(name=name, keys=sorted(tags)))
        return Observation(
            exists=True,
            up_to_date=not problems,
            ids={"dbSecretArn": arn},
            detail="; ".join(problems),
            facts={
                "dbSecretName": name,
                "dbHost": (value or {}).get("host"),
                "dbPort": (value or {}).get("port"),
                "dbRotationEnabled": bool(described.get("RotationEnabled")),
            },
        )

    def create(self, ctx: Context) -> None:
        """Create the secret with a new password; adopt (or restore) one of the same name."""
        sm = ctx.clients.secretsmanager
        described = find_secret(ctx)
        if described is not None:
            self._adopt(ctx, described)
            return
        fields = desired_fields(ctx, master_endpoint(ctx))
        try:
            created = sm.create_secret(
                Name=ctx.names.db_secret,
                Description=DESCRIPTION.format(namespace=ctx.namespace, name=ctx.name),
                SecretString=json.dumps({**fields, "password": new_password()}),
                Tags=ctx.tag_list,
            )
        except ClientError as exc:
            code = aws.error_code(exc)
            if code == EXISTS:  # created meanwhile (or moto's answer for a deleted name)
                again = find_secret(ctx)
                if again is not None:
                    self._adopt(ctx, again)
                    return
            if code in (EXISTS, INVALID_REQUEST):
                # AWS finishes a forced delete asynchronously: the name frees up shortly.
                raise TransientError(
                    "SecretDeletionPending", DELETION_PENDING.format(name=ctx.names.db_secret)
                ) from exc
            raise
        arn = str(created["ARN"])
        ctx.remember({"dbSecretArn": arn})
        log.info("created secret %s", ctx.names.db_secret)
        self._ensure_rotation(ctx, arn, {})  # a new secret rotates only once told to

    def _adopt(self, ctx: Context, described: Mapping[str, Any]) -> None:
        """Take over an existing secret of our name: restore it if deleted, then update it."""
        arn = str(described["ARN"])
        if described.get("DeletedDate"):
            try:
                ctx.clients.secretsmanager.restore_secret(SecretId=arn)
            except ClientError as exc:
                if aws.error_code(exc) == INVALID_REQUEST:  # a forced delete in progress
                    raise TransientError(
                        "SecretDeletionPending", DELETION_PENDING.format(name=ctx.names.db_secret)
                    ) from exc
                raise
            log.info("restored secret %s, which was scheduled for deletion", ctx.names.db_secret)
        else:
            log.info("adopting secret %s", ctx.names.db_secret)
        ctx.remember({"dbSecretArn": arn})
        self._converge(ctx, arn)

    def update(self, ctx: Context, observed: Observation) -> None:
        """Rewrite the connection fields (keeping the password), tags and rotation."""
        described = find_secret(ctx)
        if described is None:
            return
        if described.get("DeletedDate"):
            self._adopt(ctx, described)
            return
        arn = str(described["ARN"])
        ctx.remember({"dbSecretArn": arn})
        self._converge(ctx, arn)

    def _converge(self, ctx: Context, arn: str) -> None:
        sm = ctx.clients.secretsmanager
        value = _value(ctx, arn) or {}
        wanted = desired_fields(ctx, master_endpoint(ctx))
        if field_differences(wanted, value) or not value.get("password"):
            password = value.get("password") or new_password()
            fresh = {**value, **wanted, "password": password}
            sm.put_secret_value(SecretId=arn, SecretString=json.dumps(fresh))
            log.info("rewrote the connection fields of secret %s", ctx.names.db_secret)
        described = sm.describe_secret(SecretId=arn)
        tags = missing_tags(ctx, described)
        if tags:
            sm.tag_resource(SecretId=arn, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
        self._ensure_rotation(ctx, arn, described)

    def _ensure_rotation(self, ctx: Context, arn: str, described: Mapping[str, Any]) -> None:
        """Switch rotation on or off as the settings say, without rotating right now."""
        wanted = desired_rotation(ctx)
        if rotation_matches(wanted, described):
            return
        sm = ctx.clients.secretsmanager
        if wanted is None:
            sm.cancel_rotate_secret(SecretId=arn)
            log.info("turned rotation off for secret %s", ctx.names.db_secret)
            return
        sm.rotate_secret(SecretId=arn, RotateImmediately=False, **wanted)
        log.info("turned rotation on for secret %s", ctx.names.db_secret)

    def delete(self, ctx: Context) -> None:
        """Delete at once, without a recovery window, so the name can be re-created."""
        recorded = ctx.ids.get("dbSecretArn")
        for secret_id in (recorded, ctx.names.db_secret):
            if not secret_id:
                continue
            try:
                ctx.clients.secretsmanager.delete_secret(
                    SecretId=str(secret_id), ForceDeleteWithoutRecovery=True
                )
            except ClientError as exc:
                if not aws.is_not_found(exc, NOT_FOUND):
                    raise
                continue  # the recorded one is gone: one of our name may still exist
            log.info("deleted secret %s", ctx.names.db_secret)
            return
