"""The app client WordPress signs users in with: authorization code flow, with a secret.

WordPress is a confidential client (the code is exchanged server-side), so the client has
a secret; the ClientSecret step copies it to Secrets Manager and only ECS reads it from
there. Callback and sign-out URLs are the spec's, or derived from the tenant's URL (see
`identity.tenant_url`) and the plugin's redirect URI.

UpdateUserPoolClient resets every field it is not sent, so an update always sends the whole
desired configuration. A client cannot gain a secret afterwards: one found without a secret
is replaced (a new client id, which the secret and the task definition then follow).
Clients have no tags; the pool is the tenant's own, so the client's name finds it.
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import ClientError

from wpenv import aws, sso
from wpenv.reconcilers import identity
from wpenv.reconcilers.base import MISSING, Context, Observation, TransientError
from wpenv.reconcilers.user_pool import NOT_FOUND, PAGE, pool_id

log = logging.getLogger(__name__)

CLIENT_NAME = "wordpress"
WAITING = "the app client needs the user pool recorded first"
STALE = "app client {id} differs from the plan in {fields}"
NO_SECRET = "app client {id} has no secret and must be replaced"  # noqa: S105 (a message)
# Fields compared as sets: Cognito does not promise to keep the order.
UNORDERED = (
    "AllowedOAuthFlows",
    "AllowedOAuthScopes",
    "SupportedIdentityProviders",
    "CallbackURLs",
    "LogoutURLs",
    "ExplicitAuthFlows",
)


def desired_client(ctx: Context, tenant_url: str) -> dict[str, Any]:
    """The client's whole configuration, as Create/UpdateUserPoolClient take it (no I/O)."""
    return {
        "ClientName": CLIENT_NAME,
        "AllowedOAuthFlows": ["code"],
        "AllowedOAuthFlowsUserPoolClient": True,
        "AllowedOAuthScopes": list(sso.SCOPES),
        "SupportedIdentityProviders": ["COGNITO"],
        "CallbackURLs": sso.callback_urls(ctx.spec, tenant_url),
        "LogoutURLs": sso.logout_urls(ctx.spec, tenant_url),
        # Only the hosted UI signs users in; the refresh flow keeps sessions alive.
        "ExplicitAuthFlows": ["ALLOW_REFRESH_TOKEN_AUTH"],
        "PreventUserExistenceErrors": "ENABLED",
        "EnableTokenRevocation": True,
    }


def differences(desired: dict[str, Any], described: dict[str, Any]) -> list[str]:
    """Names of the fields where the client differs from the plan (never the secret)."""
    stale = []
    for key, value in desired.items():
        have = described.get(key)
        if key in UNORDERED:
            if sorted(value) != sorted(have or []):
                stale.append(key)
        elif have != value:
            stale.append(key)
    return stale


def _describe(ctx: Context, pid: str, client_id: str) -> dict[str, Any] | None:
    try:
        found = ctx.clients.cognito_idp.describe_user_pool_client(
            UserPoolId=pid, ClientId=client_id
        )
    except ClientError as exc:
        if aws.is_not_found(exc, NOT_FOUND):
            return None
        raise
    return dict(found["UserPoolClient"])


def find_client(ctx: Context, pid: str) -> dict[str, Any] | None:
    """DescribeUserPoolClient of our client (recorded id, else by name); holds the secret.

    The result carries `ClientSecret`: never log it or put it into an Observation.
    """
    recorded = ctx.ids.get("userPoolClientId")
    if recorded:
        found = _describe(ctx, pid, str(recorded))
        if found is not None:
            return found
    idp = ctx.clients.cognito_idp
    token: str | None = None
    try:
        while True:
            page = idp.list_user_pool_clients(UserPoolId=pid, MaxResults=PAGE,
                                              **({"NextToken": token} if token else {}))
            for summary in page.get("UserPoolClients") or []:
                if summary.get("ClientName") == CLIENT_NAME:
                    return _describe(ctx, pid, str(summary["ClientId"]))
            token = page.get("NextToken")
            if not token:
                return None
    except ClientError as exc:
        if aws.is_not_found(exc, NOT_FOUND):
            return None  # the pool is gone, and the client with it
        raise


class UserPoolClient:
    """The WordPress app client of one tenant's pool (condition group "Identity")."""

    kind = "UserPoolClient"
    group = "Identity"

    def wanted(self, ctx: Context) -> bool:
        """Only with identity on."""
        return identity.enabled(ctx)

    def observe(self, ctx: Context) -> Observation:
        """Find the client; stale when a field differs or it has no secret."""
        pid = pool_id(ctx)
        found = find_client(ctx, pid) if pid else None
        if found is None:
            return MISSING
        client_id = str(found["ClientId"])
        if not found.get("ClientSecret"):
            stale, detail = ["ClientSecret"], NO_SECRET.format(id=client_id)
        else:
            stale = differences(desired_client(ctx, identity.tenant_url(ctx)), found)
            detail = STALE.format(id=client_id, fields=", ".join(stale)) if stale else ""
        return Observation(
            exists=True,
            up_to_date=not stale,
            ids={"userPoolClientId": client_id},
            detail=detail,
            facts={
                "callbackUrls": list(found.get("CallbackURLs") or []),
                "logoutUrls": list(found.get("LogoutURLs") or []),
            },
        )

    def create(self, ctx: Context) -> None:
        """Create the client with a secret; adopt (and correct) one that exists."""
        pid = ctx.ids.get("userPoolId")
        if not pid:
            raise TransientError("WaitingForDependencies", WAITING)
        found = find_client(ctx, str(pid))
        if found is not None and found.get("ClientSecret"):
            ctx.remember({"userPoolClientId": str(found["ClientId"])})
            self._update(ctx, str(pid), found)
            return
        if found is not None:
            self._delete(ctx, str(pid), str(found["ClientId"]))
        self._create(ctx, str(pid))

    def update(self, ctx: Context, observed: Observation) -> None:
        """Send the whole configuration; replace a client that has no secret."""
        self.create(ctx)

    def _create(self, ctx: Context, pid: str) -> None:
        created = ctx.clients.cognito_idp.create_user_pool_client(
            UserPoolId=pid, GenerateSecret=True, **desired_client(ctx, identity.tenant_url(ctx))
        )["UserPoolClient"]
        ctx.remember({"userPoolClientId": str(created["ClientId"])})
        log.info("created app client %s in pool %s", created["ClientId"], pid)

    def _update(self, ctx: Context, pid: str, found: dict[str, Any]) -> None:
        desired = desired_client(ctx, identity.tenant_url(ctx))
        if not differences(desired, found):
            return
        ctx.clients.cognito_idp.update_user_pool_client(
            UserPoolId=pid, ClientId=str(found["ClientId"]), **desired
        )
        log.info("updated app client %s in pool %s", found["ClientId"], pid)

    def _delete(self, ctx: Context, pid: str, client_id: str) -> None:
        try:
            ctx.clients.cognito_idp.delete_user_pool_client(UserPoolId=pid, ClientId=client_id)
        except ClientError as exc:
            if not aws.is_not_found(exc, NOT_FOUND):
                raise
        log.info("deleted app client %s of pool %s", client_id, pid)

    def delete(self, ctx: Context) -> None:
        """Delete the client; "already gone" (or the pool gone) is success."""
        pid = pool_id(ctx)
        found = find_client(ctx, pid) if pid else None
        if pid and found is not None:
            self._delete(ctx, pid, str(found["ClientId"]))
