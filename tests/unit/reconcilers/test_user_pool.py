"""The user pool's planned settings, their comparison and UpdateUserPool's arguments, no AWS."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import botocore.session
from botocore.validate import ParamValidator

from wpenv.engine import make_context
from wpenv.plan import TAG_ENVIRONMENT, TAG_RETAINED
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


def _described(ctx: Context) -> dict[str, Any]:
    """A DescribeUserPool result with settings the operator never sets (a person's edits)."""
    described: dict[str, Any] = dict(_echoed(ctx))
    described.update(
        Arn="arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_x",
        Status="Enabled",
        CreationDate=datetime(2026, 11, 27, tzinfo=UTC),
        LastModifiedDate=datetime(2026, 11, 28, tzinfo=UTC),
        SchemaAttributes=[{"Name": "email", "AttributeDataType": "String"}],
        Domain="wpenv-acme-1234abcd",
        SmsConfigurationFailure="none",
        LambdaConfig={"PreSignUp": "arn:aws:lambda:eu-west-1:123456789012:function:pre"},
        MfaConfiguration="OFF",
        EmailConfiguration={"EmailSendingAccount": "COGNITO_DEFAULT"},
        VerificationMessageTemplate={"DefaultEmailOption": "CONFIRM_WITH_CODE"},
        UserPoolTier="ESSENTIALS",
    )
    admin = described["AdminCreateUserConfig"]
    described["AdminCreateUserConfig"] = {**admin, "UnusedAccountValidityDays": 7}
    return described


def test_update_arguments_keep_every_current_setting_in_updates_names() -> None:
    described = _described(_ctx())
    before = copy.deepcopy(described)
    args = up.update_arguments(described, DeletionProtection="INACTIVE")
    assert described == before  # pure
    assert args["UserPoolId"] == "eu-west-1_x" and args["PoolName"] == "wpenv-acme"
    assert args["DeletionProtection"] == "INACTIVE"
    # Hand-set settings survive: UpdateUserPool would reset them to defaults if not sent.
    assert args["LambdaConfig"] == described["LambdaConfig"]
    assert args["UserPoolTags"] == described["UserPoolTags"]
    assert args["Policies"] == described["Policies"]
    assert args["UserPoolTier"] == "ESSENTIALS"
    # Only what UpdateUserPool accepts: no read-only fields, no deprecated field it refuses.
    for read_only in ("Id", "Name", "Arn", "Status", "CreationDate", "SchemaAttributes",
                      "UsernameAttributes", "Domain", "EstimatedNumberOfUsers",
                      "SmsConfigurationFailure"):
        assert read_only not in args
    assert args["AdminCreateUserConfig"] == {"AllowAdminCreateUserOnly": True}


def test_update_arguments_are_valid_for_the_sdks_update_user_pool() -> None:
    """Every key the table names is an UpdateUserPool parameter (botocore's own model)."""
    operation = botocore.session.get_session().get_service_model("cognito-idp") \
        .operation_model("UpdateUserPool")
    assert set(up.UPDATABLE) | {"UserPoolId"} <= set(operation.input_shape.members)
    args = up.update_arguments(_described(_ctx()), DeletionProtection="INACTIVE")
    report = ParamValidator().validate(args, operation.input_shape)
    assert not report.has_errors(), report.generate_report()


def test_retagged_merges_tags_into_the_current_settings() -> None:
    ctx = _ctx()
    described = _described(ctx)
    args = up.retagged(described, {TAG_RETAINED: "true"})
    assert args["UserPoolTags"] == {**ctx.tags, "cost-centre": "web", TAG_RETAINED: "true"}
    assert args["DeletionProtection"] == "ACTIVE"  # protection stays as it is
    assert args["LambdaConfig"] == described["LambdaConfig"]
    assert up.retagged({"Id": "p"}, {"k": "v"}) == {"UserPoolId": "p", "UserPoolTags": {"k": "v"}}
