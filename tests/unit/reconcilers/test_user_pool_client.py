"""The app client's planned configuration and its comparison, without AWS."""

from __future__ import annotations

from wpenv.engine import make_context
from wpenv.reconcilers import user_pool_client as upc
from wpenv.reconcilers.base import Context
from wpenv.settings import Settings

URL = "http://alb.example.internal/acme/"


def _ctx() -> Context:
    return make_context("ns", "acme", {"tenantId": "acme"}, settings=Settings(), clients=None)


def test_code_flow_with_the_plugins_redirect_uri() -> None:
    client = upc.desired_client(_ctx(), URL)
    assert client["AllowedOAuthFlows"] == ["code"]
    assert client["AllowedOAuthFlowsUserPoolClient"] is True
    assert client["AllowedOAuthScopes"] == ["openid", "email", "profile"]
    assert client["SupportedIdentityProviders"] == ["COGNITO"]
    redirect = "wp-admin/admin-ajax.php?action=openid-connect-authorize"
    assert client["CallbackURLs"] == [URL + redirect]
    assert client["LogoutURLs"] == [URL]
    assert "GenerateSecret" not in client  # creation only; update must not send it


def test_differences_ignore_order_and_extra_fields_never_name_the_secret() -> None:
    desired = upc.desired_client(_ctx(), URL)
    echoed = {**desired, "AllowedOAuthScopes": ["profile", "openid", "email"],
              "ClientId": "c", "ClientSecret": "s3cr3t", "RefreshTokenValidity": 30}
    assert upc.differences(desired, echoed) == []
    echoed["LogoutURLs"] = ["http://elsewhere/"]
    echoed["AllowedOAuthFlowsUserPoolClient"] = False
    assert upc.differences(desired, echoed) == ["AllowedOAuthFlowsUserPoolClient", "LogoutURLs"]


def test_what_observe_finds_never_shows_the_secret() -> None:
    found = upc.AppClient("eu-west-1_x", "c", {"ClientId": "c", "ClientSecret": "s3cr3t"})
    assert found.has_secret and "s3cr3t" not in repr(found)
    assert not upc.AppClient("eu-west-1_x", "c", {"ClientId": "c"}).has_secret
