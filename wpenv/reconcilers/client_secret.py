"""The app client's id and secret in Secrets Manager, where ECS reads them (HLD 6.2).

The value is `{"client_id": ..., "client_secret": ...}`, copied from DescribeUserPoolClient;
the task definition names the `client_secret` key by ARN, so the secret never appears in
it. When the client changes (replaced, or its secret regenerated) the value is rewritten.
The comparison happens in memory only: no value reaches a log line, an Observation, an
Event, the status or an exception message.

Rotation is manual (HLD 6.2): replace the client, and this step and the task definition
follow. Finding, restoring, re-tagging, the forced deletion (so a switch of identity off
and on can re-create the same name at once) and the orphan listing (only names shaped like
`wpenv/<tenant>/oidc-client`) are `secret_store`'s, shared with the database secret.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from wpenv import aws, reasons
from wpenv.errors import TransientError
from wpenv.reconcilers import identity
from wpenv.reconcilers.base import Context, Observation
from wpenv.reconcilers.secret_store import NOT_FOUND, StoredSecret, secret_string
from wpenv.reconcilers.user_pool import pool_id
from wpenv.reconcilers.user_pool_client import find_client
from wpenv.sso import SECRET_KEY

log = logging.getLogger(__name__)

DESCRIPTION = "OpenID Connect client of WordPress environment {namespace}/{name}"
WAITING = "the client secret needs the app client recorded first"
STALE_VALUE = "secret {name} does not hold the app client's current id and secret"
STALE_UNKNOWN = "secret {name}: no app client to compare it with"


def desired_value(client: Mapping[str, Any]) -> dict[str, str]:
    """The secret's value for a described client (holds the secret: never log it)."""
    return {"client_id": str(client["ClientId"]), SECRET_KEY: str(client.get("ClientSecret"))}


def _current(ctx: Context, arn: str) -> Any:
    """The secret's current value parsed, or None when unreadable (never logged)."""
    try:
        return json.loads(secret_string(ctx, ClientSecret.kind, arn) or "null")
    except ValueError:
        return None
    except ClientError as exc:
        if aws.error_code(exc) == NOT_FOUND:
            return None  # no current version yet
        raise


def _client(ctx: Context) -> dict[str, Any] | None:
    pid = pool_id(ctx)
    return find_client(ctx, pid) if pid else None


class ClientSecret(
    StoredSecret, group="Identity", ids=("clientSecretArn",), needs=("UserPoolClient",)
):
    """Secrets Manager secret with one tenant's OIDC client credentials ("Identity")."""

    description = DESCRIPTION

    named = "client_secret"  # wpenv/<tenant>/oidc-client

    def wanted(self, ctx: Context) -> bool:
        """Only with identity on."""
        return identity.enabled(ctx)

    def value_problems(self, ctx: Context, arn: str, described: Mapping[str, Any]) -> list[str]:
        """Stale when the value is not the client's current id and secret."""
        name = ctx.names.client_secret
        client = _client(ctx)
        if client is None:
            return [STALE_UNKNOWN.format(name=name)]
        if _current(ctx, arn) != desired_value(client):
            return [STALE_VALUE.format(name=name)]
        return []

    def create(self, ctx: Context, observed: Observation) -> None:
        """Create the secret from the client; adopt (or restore) the one observe found."""
        client = _client(ctx)
        if client is None:
            raise TransientError(reasons.WAITING_FOR_DEPENDENCIES, WAITING)
        self.create_or_adopt(
            ctx,
            observed,
            lambda: json.dumps(desired_value(client)),
            lambda found: self._converge(ctx, found, client),
        )

    def update(self, ctx: Context, observed: Observation) -> None:
        """Rewrite the value from the client and restore our tags."""
        self.create(ctx, observed)

    def _converge(
        self, ctx: Context, described: Mapping[str, Any], client: Mapping[str, Any]
    ) -> None:
        arn = self.take_over(ctx, described)
        wanted = desired_value(client)
        if _current(ctx, arn) != wanted:
            sm = ctx.clients.secretsmanager
            sm.put_secret_value(SecretId=arn, SecretString=json.dumps(wanted))
            log.info("wrote the app client's credentials to secret %s", ctx.names.client_secret)
        self.repair_tags(ctx, arn, described)
