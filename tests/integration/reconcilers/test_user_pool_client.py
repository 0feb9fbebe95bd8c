"""The WordPress app client against moto: OAuth settings, URLs, replacement."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import MakeCtx
from tests.integration.identity import tenant_fixture
from wpenv.reconcilers.base import MISSING, Context
from wpenv.reconcilers.pool import endpoint
from wpenv.reconcilers.user_pool_client import UserPoolClient

pytestmark = pytest.mark.e2e

REDIRECT = "wp-admin/admin-ajax.php?action=openid-connect-authorize"


def _client(ctx: Context) -> dict[str, Any]:
    found = ctx.clients.cognito_idp.describe_user_pool_client(
        UserPoolId=ctx.ids["userPoolId"], ClientId=ctx.ids["userPoolClientId"]
    )
    return dict(found["UserPoolClient"])


def _clients(ctx: Context) -> list[str]:
    found = ctx.clients.cognito_idp.list_user_pool_clients(
        UserPoolId=ctx.ids["userPoolId"], MaxResults=60
    )
    return [c["ClientId"] for c in found["UserPoolClients"]]


ctx = tenant_fixture(upto=1)  # a fresh tenant with its user pool


def test_create_makes_the_client_the_plan_describes_and_only_it(ctx: Context) -> None:
    client = UserPoolClient()
    client.create(ctx, MISSING)
    client_id = ctx.ids["userPoolClientId"]
    described = _client(ctx)
    assert described["ClientSecret"]
    assert described["ClientSecret"] not in repr(client.observe(ctx))
    assert described["AllowedOAuthFlows"] == ["code"]
    assert described["AllowedOAuthFlowsUserPoolClient"] is True
    assert sorted(described["AllowedOAuthScopes"]) == ["email", "openid", "profile"]
    assert described["SupportedIdentityProviders"] == ["COGNITO"]
    # The URL is the placed load balancer's, on its HTTPS listener: Cognito takes no http
    # callback outside localhost.
    listener = endpoint(ctx.clients, ctx.ids["listenerArn"])
    assert listener.protocol == "HTTPS"
    host = listener.dns_name + ("" if listener.port == 443 else f":{listener.port}")
    url = f"https://{host}/{ctx.names.tenant}/"
    assert described["CallbackURLs"] == [url + REDIRECT]
    assert described["LogoutURLs"] == [url]

    client.create(ctx, MISSING)  # adopts: Cognito would make a second client of the name
    assert _clients(ctx) == [client_id]
    client.ensure_absent(ctx)
    assert _clients(ctx) == []


def test_spec_urls_and_hand_edits(ctx: Context, make_ctx: MakeCtx) -> None:
    client = UserPoolClient()
    client.create(ctx, client.observe(ctx))
    client_id = ctx.ids["userPoolClientId"]
    secret = _client(ctx)["ClientSecret"]
    ctx.clients.cognito_idp.update_user_pool_client(
        UserPoolId=ctx.ids["userPoolId"], ClientId=client_id, AllowedOAuthScopes=["openid"]
    )
    observed = client.observe(ctx)
    assert not observed.up_to_date and "AllowedOAuthScopes" in observed.detail
    client.update(ctx, observed)
    assert client.observe(ctx).up_to_date

    named = make_ctx(tenant=ctx.names.tenant, identity={
        "callbackUrls": ["https://acme.example.com/cb"],
        "logoutUrls": ["https://acme.example.com/"],
    })
    named.ids.update(ctx.ids)
    observed = client.observe(named)
    assert not observed.up_to_date and "CallbackURLs, LogoutURLs" in observed.detail
    client.update(named, observed)
    described = _client(named)
    assert described["CallbackURLs"] == ["https://acme.example.com/cb"]
    assert described["LogoutURLs"] == ["https://acme.example.com/"]
    assert sorted(described["AllowedOAuthScopes"]) == ["email", "openid", "profile"]
    assert described["ClientId"] == client_id and described["ClientSecret"] == secret


def test_a_client_without_a_secret_is_replaced(ctx: Context) -> None:
    idp = ctx.clients.cognito_idp
    plain = idp.create_user_pool_client(
        UserPoolId=ctx.ids["userPoolId"], ClientName="wordpress", GenerateSecret=False
    )["UserPoolClient"]["ClientId"]
    client = UserPoolClient()
    observed = client.observe(ctx)
    assert observed.exists and not observed.up_to_date and "no secret" in observed.detail
    client.update(ctx, observed)
    assert ctx.ids["userPoolClientId"] != plain
    assert _clients(ctx) == [ctx.ids["userPoolClientId"]]
    assert _client(ctx)["ClientSecret"]
