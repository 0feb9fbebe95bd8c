"""The tenant's database credentials in Secrets Manager: where its MySQL password is born.

This step runs *before* the database step, a deliberate swap of the HLD's order: the
password is generated here, once, when the secret is created, and the database step reads
it back from Secrets Manager to create (or repair) the MySQL user. A crash between the two
steps therefore leaves at worst a secret with no user yet, never a MySQL user whose
password nobody knows. The password is never logged, compared or put into an Observation;
only the connection fields (host, port, username, dbname) are compared and rewritten. Host
and port are the shared server's endpoint from the settings (`db_host`, `db_port`), for
WordPress: the RDS master secret holds only a login, so nothing here reads it.

The value has the shape AWS's MySQL rotation functions expect, so when
`db_rotation_lambda_arn` is set rotation is switched on (every 30 days), but only once the
database user exists and logs in with this secret's password. RotateSecret, even with
RotateImmediately false, has Secrets Manager run the rotation function's testSecret step,
which logs in with the secret; before the Database step made the user that fails, and a
failed rotation leaves AWSPENDING behind, which blocks every later RotateSecret. So the
proof comes from the Database kind, which already logs in on every pass: it records the ARN
of the secret whose password it proved as `databaseLoginProven`, and switches rotation on
itself right after it made or repaired the user (so a first provision ends with rotation
on). Here rotation is judged against the settings only for a proven secret: an unproven
one is never switched on (and never reported stale for it), and the idle pass reads nothing
more than DescribeSecret, which it reads anyway. Switching rotation off needs no proof.
The rotation function is expected to be AWS's alternating-users MySQL template
(`SecretsManagerRDSMySQLRotationMultiUser`): each rotation gives the user that is *not*
current a new password and moves AWSCURRENT to it, so `username` alternates between the
tenant's user and `<user>_clone`. Either is right here (never rewritten back), and the
value carries `masterarn`, the superuser secret the template logs in with
(`db_rotation_master_secret_arn`), whenever the settings name one.
The version AWSCURRENT is on is recorded as `dbSecretVersion`: a rotation (Secrets
Manager's, every 30 days) moves it, and the Service step rolls the tasks, which read the
password only when they start, onto the new one (wpenv.reconcilers.service).
Finding, restoring, re-tagging, the
forced deletion and the orphan listing (only names shaped like `wpenv/<tenant>/database`)
are `secret_store`'s, shared with the client secret.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from botocore.exceptions import ClientError

from wpenv import aws, mysql, reasons
from wpenv.errors import TransientError
from wpenv.plan import clone_user
from wpenv.reconcilers.base import Context, Observation
from wpenv.reconcilers.secret_store import StoredSecret, credentials, describe

log = logging.getLogger(__name__)

ROTATION_DAYS = 30
PASSWORD_BYTES = 32  # token_urlsafe(32): 43 characters of [A-Za-z0-9_-]
FIELDS = ("engine", "host", "port", "username", "dbname", "masterarn")
MASTER_ARN = "masterarn"  # the alternating-users template's superuser secret
# status.resources key the Database kind records: the secret whose password logged in.
PROVEN = "databaseLoginProven"
# status.resources key of the version AWSCURRENT is on (what the Service step follows).
VERSION = "dbSecretVersion"
CURRENT = "AWSCURRENT"

DESCRIPTION = "MySQL credentials of WordPress environment {namespace}/{name}"
STALE_FIELDS = "secret {name} has other {fields} than the plan"
STALE_NO_CREDENTIAL = "secret {name} holds no password"
STALE_ROTATION = "secret {name} has rotation {actual}, the settings want {wanted}"
UNREADABLE = "secret {name} does not hold a JSON object"
ROTATION_PENDING = ("Secrets Manager has not finished an earlier rotation of secret {name}; "
                    "it reattempts it, and the next pass turns rotation on")
# RotateSecret's answer while an AWSPENDING version is left from a rotation not finished
# (Secrets Manager API Reference, RotateSecret).
ROTATION_UNFINISHED = "previous rotation isn't complete"


def _rotation_unfinished(exc: ClientError) -> bool:
    """Whether RotateSecret was refused because an earlier rotation is not finished."""
    message = str(exc.response.get("Error", {}).get("Message", ""))
    return aws.error_code(exc) == "InvalidRequestException" and \
        ROTATION_UNFINISHED in message


def shared_endpoint(ctx: Context) -> dict[str, Any]:
    """Host and port of the shared server, from the settings (no I/O; unset is transient)."""
    host, port = mysql.endpoint(ctx.settings)
    return {"host": host, "port": port}


def desired_fields(ctx: Context, endpoint: Mapping[str, Any]) -> dict[str, Any]:
    """Every field of the secret value except the password (no I/O); `masterarn` only
    when the settings name the rotation's superuser secret."""
    master = ctx.settings.db_rotation_master_secret_arn
    return {
        "engine": "mysql",
        "host": str(endpoint["host"]),
        "port": int(endpoint["port"]),
        "username": ctx.names.database_user,
        "dbname": ctx.names.database,
        **({MASTER_ARN: master} if master else {}),
    }


def usernames(user: str) -> tuple[str, str]:
    """The two users the alternating rotation moves `username` between (no I/O)."""
    return user, clone_user(user)


def kept_fields(wanted: Mapping[str, Any], value: Mapping[str, Any]) -> dict[str, Any]:
    """`wanted`, but with the value's username when it is either of the tenant's users: a
    rotation moved it, and rewriting it back would pair the other user with this password."""
    if value.get("username") in usernames(str(wanted["username"])):
        return {**wanted, "username": value["username"]}
    return dict(wanted)


def proven(ctx: Context, arn: str) -> bool:
    """Whether the Database step recorded that this secret's password logs in (no I/O)."""
    return bool(arn) and ctx.ids.get(PROVEN) == arn


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
    """Names of the non-secret fields whose value differs (port compared as a number;
    either of the two users; `masterarn` only when wanted)."""
    wanted = kept_fields(wanted, value)
    diff = []
    for key in FIELDS:
        if key not in wanted:
            continue
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


def current_version(described: Mapping[str, Any]) -> str | None:
    """The version id AWSCURRENT is on, from DescribeSecret (`VersionIdsToStages`) or a
    ListSecrets entry (`SecretVersionsToStages`); None when neither names one (no I/O)."""
    stages = described.get("VersionIdsToStages") or described.get("SecretVersionsToStages")
    for version, labels in (stages or {}).items():
        if CURRENT in (labels or []):
            return str(version)
    return None


def _value(ctx: Context, arn: str) -> dict[str, Any] | None:
    """The current value, or None when it is not a JSON object (a hand-made mess)."""
    try:
        return credentials(ctx, DatabaseSecret.kind, arn)
    except ValueError:  # json.JSONDecodeError is a ValueError
        return None


class DatabaseSecret(StoredSecret, group="Database", ids=("dbSecretArn", VERSION)):
    """Secrets Manager secret with one tenant's MySQL credentials (condition "Database")."""

    description = DESCRIPTION

    named = "db_secret"  # wpenv/<tenant>/database

    def inspect(self, ctx: Context, found: dict[str, Any]) -> Observation:
        """As every stored secret, and the version AWSCURRENT is on (`dbSecretVersion`)."""
        observed = super().inspect(ctx, found)
        if not observed.exists:
            return observed
        return replace(observed, ids={**observed.ids, VERSION: current_version(found)})

    def record_version(self, ctx: Context) -> None:
        """Read the recorded secret's description again and record its current version.

        The Database step calls it when the secret's value moved on under the cache (a
        rotation): the Service step later in the same pass then rolls the tasks at once.
        """
        arn = ctx.ids.get("dbSecretArn")
        described = describe(ctx.clients, str(arn)) if arn else None
        if described is not None and not described.get("DeletedDate"):
            ctx.remember({VERSION: current_version(described)})

    def value_problems(self, ctx: Context, arn: str, described: Mapping[str, Any]) -> list[str]:
        """Stale when host/port/username/dbname, a password or rotation differ.

        The password is only checked for presence, never compared or reported.
        """
        name = ctx.names.db_secret
        value = _value(ctx, arn)
        wanted = desired_fields(ctx, shared_endpoint(ctx))
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
        deferred = rotation is not None and not proven(ctx, arn)  # no user to test yet
        if not deferred and not rotation_matches(rotation, described):
            problems.append(
                STALE_ROTATION.format(
                    name=name,
                    actual="on" if described.get("RotationEnabled") else "off",
                    wanted="on" if rotation else "off",
                )
            )
        return problems

    def create(self, ctx: Context, observed: Observation) -> None:
        """Create the secret with a new password; adopt (or restore) the one observe found."""

        def value() -> str:
            fields = desired_fields(ctx, shared_endpoint(ctx))
            return json.dumps({**fields, "password": new_password()})

        # A new secret has no database user yet: rotation waits for the Database step.
        created = self.create_or_adopt(ctx, observed, value,
                                       lambda found: self._adopt(ctx, found))
        # Recorded with the ARN, as every kind records its ids: a new secret's only version
        # is the one CreateSecret names; an adopted one is described again.
        if created is not None:
            ctx.remember({VERSION: str(created["VersionId"])})
        else:
            self.record_version(ctx)

    def _adopt(self, ctx: Context, described: Mapping[str, Any]) -> None:
        """Take over an existing secret of our name: restore it if deleted, then update it."""
        if not described.get("DeletedDate"):
            log.info("adopting secret %s", ctx.names.db_secret)
        self._converge(ctx, described)

    def update(self, ctx: Context, observed: Observation) -> None:
        """Rewrite the connection fields (keeping the password), tags and rotation."""
        self._converge(ctx, observed.found)

    def _converge(self, ctx: Context, described: Mapping[str, Any]) -> None:
        arn = self.take_over(ctx, described)
        value = _value(ctx, arn) or {}
        wanted = desired_fields(ctx, shared_endpoint(ctx))
        if field_differences(wanted, value) or not value.get("password"):
            password = value.get("password") or new_password()
            fresh = {**value, **kept_fields(wanted, value), "password": password}
            sm = ctx.clients.secretsmanager
            sm.put_secret_value(SecretId=arn, SecretString=json.dumps(fresh))
            log.info("rewrote the connection fields of secret %s", ctx.names.db_secret)
        self.repair_tags(ctx, arn, described)
        self._ensure_rotation(ctx, arn, described)

    def _ensure_rotation(self, ctx: Context, arn: str, described: Mapping[str, Any]) -> None:
        """Switch rotation on or off as the settings say, without rotating right now.

        On only for a proven secret (see the module docstring); off whenever told.
        """
        wanted = desired_rotation(ctx)
        if rotation_matches(wanted, described) or (wanted is not None and not proven(ctx, arn)):
            return
        sm = ctx.clients.secretsmanager
        if wanted is None:
            sm.cancel_rotate_secret(SecretId=arn)
            log.info("turned rotation off for secret %s", ctx.names.db_secret)
            return
        try:
            sm.rotate_secret(SecretId=arn, RotateImmediately=False, **wanted)
        except ClientError as exc:
            if not _rotation_unfinished(exc):
                raise
            # A retried RotateSecret whose first attempt took (a 5xx or a timeout after
            # AWS acted) meets its own test run; or an earlier rotation is still pending.
            now = describe(ctx.clients, arn)
            if now is None or not rotation_matches(wanted, now):
                raise TransientError(reasons.ROTATION_IN_PROGRESS, ROTATION_PENDING.format(
                    name=ctx.names.db_secret)) from exc
        log.info("turned rotation on for secret %s", ctx.names.db_secret)

    def rotate_once_proven(self, ctx: Context, arn: str) -> None:
        """The Database step's call once it proved the login: rotation as the settings say.

        Reads DescribeSecret only when the settings want rotation, and only from the
        Database step's create or update, never from an idle pass.
        """
        if desired_rotation(ctx) is None or not proven(ctx, arn):
            return
        described = describe(ctx.clients, arn)
        if described is not None and not described.get("DeletedDate"):
            self._ensure_rotation(ctx, arn, described)
            ctx.observations.changed(ctx.owner(self.kind))  # written for the Database step
