"""The app client's id and secret in Secrets Manager, where ECS reads them (HLD 6.2).

The value is `{"client_id": ..., "client_secret": ...}`, copied from DescribeUserPoolClient;
the task definition names the `client_secret` key by ARN, so the secret never appears in
it. When the client changes (replaced, or its secret regenerated) the value is rewritten.
The comparison happens in memory only: no value reaches a log line, an Observation, an
Event, the status or an exception message.

Rotation is manual (HLD 6.2): replace the client, and this step and the task definition
follow. Deletion is forced (no recovery window), like the database secret's, so a rollback
or a switch of identity off and on can re-create the same name at once; a secret found
scheduled for deletion is restored instead.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from wpenv import aws
from wpenv.reconcilers import identity
from wpenv.reconcilers.base import MISSING, Context, Observation, TransientError, tag_diff
from wpenv.reconcilers.db_secret import EXISTS, INVALID_REQUEST, NOT_FOUND
from wpenv.reconcilers.user_pool import pool_id
from wpenv.reconcilers.user_pool_client import find_client
from wpenv.sso import SECRET_KEY

log = logging.getLogger(__name__)

DESCRIPTION = "OpenID Connect client of WordPress environment {namespace}/{name}"
WAITING = "the client secret needs the app client recorded first"
STALE_VALUE = "secret {name} does not hold the app client's current id and secret"
STALE_UNKNOWN = "secret {name}: no app client to compare it with"
STALE_TAGS = "secret {name} lacks tags {keys}"
SCHEDULED = "secret {name} is scheduled for deletion; the next create restores it"
DELETION_PENDING = "secret {name} is still being deleted; trying again shortly"


def desired_value(client: Mapping[str, Any]) -> dict[str, str]:
    """The secret's value for a described client (holds the secret: never log it)."""
    return {"client_id": str(client["ClientId"]), SECRET_KEY: str(client.get("ClientSecret"))}


def _describe(ctx: Context, secret_id: str) -> dict[str, Any] | None:
    try:
        return dict(ctx.clients.secretsmanager.describe_secret(SecretId=secret_id))
    except ClientError as exc:
        if aws.is_not_found(exc, NOT_FOUND):
            return None
        raise


def find_secret(ctx: Context) -> dict[str, Any] | None:
    """DescribeSecret of the recorded ARN, else of the deterministic name (may be deleted)."""
    recorded = ctx.ids.get("clientSecretArn")
    if recorded:
        found = _describe(ctx, str(recorded))
        if found is not None and found.get("Name") == ctx.names.client_secret:
            return found
    return _describe(ctx, ctx.names.client_secret)


def _current(ctx: Context, arn: str) -> Any:
    """The secret's current value parsed, or None when unreadable (never logged)."""
    try:
        value = ctx.clients.secretsmanager.get_secret_value(SecretId=arn).get("SecretString")
        return json.loads(value or "null")
    except ValueError:
        return None
    except ClientError as exc:
        if aws.is_not_found(exc, NOT_FOUND):
            return None  # no current version yet
        raise


def _client(ctx: Context) -> dict[str, Any] | None:
    pid = pool_id(ctx)
    return find_client(ctx, pid) if pid else None


class ClientSecret:
    """Secrets Manager secret with one tenant's OIDC client credentials ("Identity")."""

    kind = "ClientSecret"
    group = "Identity"

    def wanted(self, ctx: Context) -> bool:
        """Only with identity on."""
        return identity.enabled(ctx)

    def observe(self, ctx: Context) -> Observation:
        """Stale when the value is not the client's current id and secret, or tags differ."""
        described = find_secret(ctx)
        if described is None:
            return MISSING
        name = ctx.names.client_secret
        if described.get("DeletedDate"):
            return Observation(
                exists=False, up_to_date=False, ready=False, detail=SCHEDULED.format(name=name)
            )
        arn = str(described["ARN"])
        problems = []
        client = _client(ctx)
        if client is None:
            problems.append(STALE_UNKNOWN.format(name=name))
        elif _current(ctx, arn) != desired_value(client):
            problems.append(STALE_VALUE.format(name=name))
        tags = tag_diff(ctx.tags, described)
        if tags:
            problems.append(STALE_TAGS.format(name=name, keys=sorted(tags)))
        return Observation(
            exists=True,
            up_to_date=not problems,
            ids={"clientSecretArn": arn},
            detail="; ".join(problems),
            facts={"clientSecretName": name},
        )

    def create(self, ctx: Context) -> None:
        """Create the secret from the client; adopt (or restore) one of the same name."""
        client = _client(ctx)
        if client is None:
            raise TransientError("WaitingForDependencies", WAITING)
        described = find_secret(ctx)
        if described is not None:
            self._adopt(ctx, described, client)
            return
        try:
            created = ctx.clients.secretsmanager.create_secret(
                Name=ctx.names.client_secret,
                Description=DESCRIPTION.format(namespace=ctx.namespace, name=ctx.name),
                SecretString=json.dumps(desired_value(client)),
                Tags=ctx.tag_list,
            )
        except ClientError as exc:
            code = aws.error_code(exc)
            if code == EXISTS:  # created meanwhile (or moto's answer for a deleted name)
                again = find_secret(ctx)
                if again is not None:
                    self._adopt(ctx, again, client)
                    return
            if code in (EXISTS, INVALID_REQUEST):
                raise TransientError(
                    "SecretDeletionPending", DELETION_PENDING.format(name=ctx.names.client_secret)
                ) from exc
            raise
        ctx.remember({"clientSecretArn": str(created["ARN"])})
        log.info("created secret %s", ctx.names.client_secret)

    def _adopt(self, ctx: Context, described: Mapping[str, Any], client: Mapping[str, Any]) -> None:
        """Take over a secret of our name: restore it if deleted, then correct it."""
        arn = str(described["ARN"])
        if described.get("DeletedDate"):
            try:
                ctx.clients.secretsmanager.restore_secret(SecretId=arn)
            except ClientError as exc:
                if aws.error_code(exc) == INVALID_REQUEST:  # a forced delete in progress
                    raise TransientError(
                        "SecretDeletionPending",
                        DELETION_PENDING.format(name=ctx.names.client_secret),
                    ) from exc
                raise
            log.info("restored secret %s, which was scheduled for deletion",
                     ctx.names.client_secret)
        ctx.remember({"clientSecretArn": arn})
        self._converge(ctx, arn, client)

    def update(self, ctx: Context, observed: Observation) -> None:
        """Rewrite the value from the client and restore our tags."""
        self.create(ctx)

    def _converge(self, ctx: Context, arn: str, client: Mapping[str, Any]) -> None:
        sm = ctx.clients.secretsmanager
        wanted = desired_value(client)
        if _current(ctx, arn) != wanted:
            sm.put_secret_value(SecretId=arn, SecretString=json.dumps(wanted))
            log.info("wrote the app client's credentials to secret %s", ctx.names.client_secret)
        tags = tag_diff(ctx.tags, sm.describe_secret(SecretId=arn))
        if tags:
            sm.tag_resource(SecretId=arn, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])

    def delete(self, ctx: Context) -> None:
        """Delete at once, without a recovery window, so the name can be re-created."""
        recorded = ctx.ids.get("clientSecretArn")
        for secret_id in (recorded, ctx.names.client_secret):
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
            log.info("deleted secret %s", ctx.names.client_secret)
            return
