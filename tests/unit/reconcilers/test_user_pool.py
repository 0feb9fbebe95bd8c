"""The user pool's planned settings and their comparison, without AWS."""

from __future__ import annotations

import copy

from wpenv.engine import make_context
from wpenv.plan import TAG_ENVIRONMENT
from wpenv.reconcilers import user_pool as up
from wpenv.reconcilers.base import Context
from wpenv.settings import Settings


def _ctx() -> Context:
    return make_context("ns", "acme", {"tenantId": "acme"}, settings=Settings(), clients=None)


def _echoed(ctx: Context) -> dict[str, object]:
    """The pool as DescribeUserPool answers it: our settings plus Cognito's additions."""
    described: dict[str, object] = copy.deepcopy(up.creation_settings(ctx))
    described["Policies"]["PasswordPolicy"]["PasswordHistorySize"] = 0  # type: ignore[index]
    described["UserPoolTags"] = {**ctx.tags, "cost-centre": "web"}
    described.update(Id="eu-west-1_x", Name="wpenv-acme", EstimatedNumberOfUsers=3)
    return described


def test_creation_settings() -> None:
    ctx = _ctx()
    created = up.creation_settings(ctx)
    assert created["PoolName"] == "wpenv-acme"
    assert created["UsernameAttributes"] == ["email"]
    assert created["AutoVerifiedAttributes"] == ["email"]
    assert created["AdminCreateUserConfig"] == {"AllowAdminCreateUserOnly": True}
    assert created["DeletionProtection"] == "ACTIVE"
    assert created["UserPoolTags"] == ctx.tags
    policy = created["Policies"]["PasswordPolicy"]
    assert policy["MinimumLength"] >= 12 and policy["RequireSymbols"] is True


def test_update_sends_every_changeable_setting_and_nothing_fixed() -> None:
    ctx = _ctx()
    assert set(up.desired_settings(ctx)) == set(up.COMPARED)
    assert up.desired_settings(ctx, "INACTIVE")["DeletionProtection"] == "INACTIVE"


def test_differences_ignore_additions_but_see_changes() -> None:
    ctx = _ctx()
    echoed = _echoed(ctx)
    assert up.differences(ctx, echoed) == []
    echoed["DeletionProtection"] = "INACTIVE"
    echoed["AdminCreateUserConfig"] = {"AllowAdminCreateUserOnly": False}
    echoed["UserPoolTags"] = {TAG_ENVIRONMENT: ctx.tags[TAG_ENVIRONMENT]}
    assert up.differences(ctx, echoed) == [
        "AdminCreateUserConfig", "DeletionProtection", "UserPoolTags"
    ]


def test_environment_of() -> None:
    assert up.environment_of({"UserPoolTags": {TAG_ENVIRONMENT: "ns.acme"}}) == "ns.acme"
    assert up.environment_of({"UserPoolTags": {}}) is None
    assert up.environment_of({}) is None


def test_no_secret_attribute_is_exported() -> None:
    for name in ("custom:api_token", "custom:Password", "custom:secretQuestion"):
        assert up.SECRET_ATTRIBUTE.search(name)
    for name in ("email", "email_verified", "sub", "name", "custom:department"):
        assert not up.SECRET_ATTRIBUTE.search(name)
