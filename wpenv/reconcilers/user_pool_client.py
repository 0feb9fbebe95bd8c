"""The app client WordPress signs users in with: authorization code flow, with a secret.

WordPress is a confidential client (the code is exchanged server-side), so the client has
a secret; the ClientSecret step copies it to Secrets Manager and only ECS reads it from
there. Callback and sign-out URLs are the spec's, or derived from the tenant's URL (see
`identity.tenant_url`) and the plugin's redirect URI.

UpdateUserPoolClient resets every field it is not sent, so an update always sends the whole
desired configuration. A client cannot gain a secret afterwards: one found without a secret
is replaced (a new client id, which the secret and the task definition then follow).
Clients have no tags; the pool is the tenant's own, so the client's name finds it. The
client goes with the pool, so it has no orphan listing of its own. What observe finds holds
the client's secret, so it travels in an `AppClient` whose repr leaves it out.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from wpenv import aws, reasons, sso
from wpenv.errors import TransientError
from wpenv.reconcilers import identity
from wpenv.reconcilers.base import Context, Observation, Resource
from wpenv.reconcilers.user_pool import NOT_FOUND, PAGE, pool_id
from wpenv.settings import Settings

log = logging.getLogger(__name__)

CLIENT_NAME = "wordpress"
WAITING = "the app client needs the user pool recorded first"
STALE = "app client {id} differs from the plan in {fields}"
NO_SECRET = "app client {id} has no secret and must be replaced"  # noqa: S105 (a message)
GONE = frozenset({NOT_FOUND})
DESCRIBED = "cognito-idp:DescribeUserPoolClient"  # the client, or the pool it lived in
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


@dataclass(frozen=True)
class AppClient:
    """A described app client (what observe finds); its repr never shows the secret."""

    pool_id: str
    client_id: str
    described: Mapping[str, Any] = field(repr=False)  # holds ClientSecret: never log it

    @property
    def has_secret(self) -> bool:
        """Whether the client was made with a secret (WordPress needs one)."""
        return bool(self.described.get("ClientSecret"))


def differences(desired: dict[str, Any], described: Mapping[str, Any]) -> list[str]:
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
    """DescribeUserPoolClient, shared within the TTL by this step and the client secret's
    (both compare with it) until the client is written; None when it is gone."""
    found: dict[str, Any] | None = ctx.observations.read(
        ctx.owner(UserPoolClient.kind), DESCRIBED, f"{pid} {client_id}",
        lambda: _read(ctx, pid, client_id),
    )
    return found


def _read(ctx: Context, pid: str, client_id: str) -> dict[str, Any] | None:
    try:
        found = ctx.clients.cognito_idp.describe_user_pool_client(
            UserPoolId=pid, ClientId=client_id
        )
    except ClientError as exc:
        if aws.error_code(exc) in GONE:
            return None
        raise
    return dict(found["UserPoolClient"])


def _by_name(ctx: Context, pid: str) -> dict[str, Any] | None:
    """DescribeUserPoolClient of the pool's client named CLIENT_NAME, if any."""
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
        if aws.error_code(exc) in GONE:
            return None  # the pool is gone, and the client with it
        raise


def find_client(ctx: Context, pid: str) -> dict[str, Any] | None:
    """DescribeUserPoolClient of our client (recorded id, else by name); holds the secret.

    The result carries `ClientSecret`: never log it or put it into an Observation.
    """
    recorded = ctx.ids.get("userPoolClientId")
    if recorded:
        found = _describe(ctx, pid, str(recorded))
        if found is not None:
            return found
    return _by_name(ctx, pid)


def _app_client(pid: str, described: dict[str, Any] | None) -> AppClient | None:
    if described is None:
        return None
    return AppClient(pid, str(described["ClientId"]), described)


class UserPoolClient(
    Resource, group="Identity", ids=("userPoolClientId",), gone=GONE, needs=("UserPool",)
):
    """The WordPress app client of one tenant's pool (condition group "Identity")."""

    def wanted(self, ctx: Context) -> bool:
        """Only with identity on."""
        return identity.enabled(ctx)

    def find_by_id(self, ctx: Context, recorded: str) -> AppClient | None:
        """The recorded client of the environment's pool."""
        pid = pool_id(ctx)
        return _app_client(pid, _describe(ctx, pid, recorded)) if pid else None

    def find_by_name(self, ctx: Context) -> AppClient | None:
        """The pool's client named CLIENT_NAME (the pool is the tenant's own)."""
        pid = pool_id(ctx)
        return _app_client(pid, _by_name(ctx, pid)) if pid else None

    def inspect(self, ctx: Context, found: AppClient) -> Observation:
        """Stale when a field differs or it has no secret."""
        if not found.has_secret:
            stale, detail = ["ClientSecret"], NO_SECRET.format(id=found.client_id)
        else:
            stale = differences(desired_client(ctx, identity.tenant_url(ctx)), found.described)
            detail = STALE.format(id=found.client_id, fields=", ".join(stale)) if stale else ""
        return Observation(
            exists=True,
            up_to_date=not stale,
            ids={"userPoolClientId": found.client_id},
            detail=detail,
            found=found,
        )

    def create(self, ctx: Context, observed: Observation) -> None:
        """Create the client with a secret; adopt (and correct) the one observe found.

        Cognito allows two clients of one name, so CreateUserPoolClient would silently make
        a duplicate: creating checks by name first unless observe found one (one read,
        only when a client is about to be made).
        """
        pid = ctx.ids.get("userPoolId")
        if not pid:
            raise TransientError(reasons.WAITING_FOR_DEPENDENCIES, WAITING)
        found: AppClient | None = observed.found or self.find(ctx)
        if found is not None and found.has_secret:
            ctx.remember({"userPoolClientId": found.client_id})
            desired = desired_client(ctx, identity.tenant_url(ctx))
            if differences(desired, found.described):
                self._update(ctx, found, desired)
            return
        if found is not None:  # no secret: replaced by one that has
            self.remove_tolerant(ctx.clients, ctx.settings, found)
        self._create(ctx, str(pid))

    def update(self, ctx: Context, observed: Observation) -> None:
        """Send the whole configuration; replace a client that has no secret."""
        found: AppClient = observed.found
        if not found.has_secret:
            self.create(ctx, observed)
            return
        ctx.remember({"userPoolClientId": found.client_id})
        self._update(ctx, found, desired_client(ctx, identity.tenant_url(ctx)))

    def _create(self, ctx: Context, pid: str) -> None:
        created = ctx.clients.once("cognito-idp").create_user_pool_client(
            UserPoolId=pid, GenerateSecret=True, **desired_client(ctx, identity.tenant_url(ctx))
        )["UserPoolClient"]
        ctx.remember({"userPoolClientId": str(created["ClientId"])})
        log.info("created app client %s in pool %s", created["ClientId"], pid)

    def _update(self, ctx: Context, found: AppClient, desired: dict[str, Any]) -> None:
        ctx.clients.cognito_idp.update_user_pool_client(
            UserPoolId=found.pool_id, ClientId=found.client_id, **desired
        )
        log.info("updated app client %s in pool %s", found.client_id, found.pool_id)

    def remove(self, clients: Any, settings: Settings, found: AppClient) -> None:
        """DeleteUserPoolClient (the pool's delete takes it along too)."""
        clients.cognito_idp.delete_user_pool_client(
            UserPoolId=found.pool_id, ClientId=found.client_id
        )
        log.info("deleted app client %s of pool %s", found.client_id, found.pool_id)
