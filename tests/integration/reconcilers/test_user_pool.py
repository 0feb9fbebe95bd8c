"""The tenant's user pool against moto: what create makes, quota, ownership, delete."""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

import pytest

from tests.integration.conftest import MakeCtx
from tests.integration.identity import build, domain_owner, our_pools, pools_named, tear_down
from tests.platform.journal import clear_journal, read_journal
from wpenv.errors import TransientError
from wpenv.plan import TAG_ENVIRONMENT, TAG_RETAINED
from wpenv.reconcilers.base import MISSING, Context
from wpenv.reconcilers.observations import Observations
from wpenv.reconcilers.user_pool import UserPool, list_pools

pytestmark = pytest.mark.e2e


@pytest.fixture
def ctx(make_ctx: MakeCtx) -> Iterator[Context]:
    """A fresh tenant whose Cognito pieces are removed afterwards, whatever the test did."""
    context = make_ctx()
    yield context
    tear_down(context)


def test_create_makes_the_pool_the_plan_describes(ctx: Context) -> None:
    pool = UserPool()
    pool.create(ctx, MISSING)
    pool_id = ctx.ids["userPoolId"]
    described = ctx.clients.cognito_idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    assert described["Name"] == ctx.names.user_pool
    assert described["UsernameAttributes"] == ["email"]
    assert described["AutoVerifiedAttributes"] == ["email"]
    assert described["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert described["DeletionProtection"] == "ACTIVE"
    assert ctx.tags.items() <= described["UserPoolTags"].items()
    (item,) = [f for f in pool.managed(ctx.clients, ctx.settings) if f.id == pool_id]
    assert item.details["name"] == ctx.names.user_pool


def test_hand_changed_settings_are_put_back(ctx: Context) -> None:
    pool = UserPool()
    pool.create(ctx, pool.observe(ctx))
    pool_id = ctx.ids["userPoolId"]
    # UpdateUserPool resets what it is not sent: this drops our tags and the protection too.
    ctx.clients.cognito_idp.update_user_pool(
        UserPoolId=pool_id, AdminCreateUserConfig={"AllowAdminCreateUserOnly": False}
    )
    observed = pool.observe(ctx)
    assert observed.exists and not observed.up_to_date
    assert "AdminCreateUserConfig" in observed.detail and "UserPoolTags" in observed.detail
    pool.update(ctx, observed)
    assert pool.observe(ctx).up_to_date
    described = ctx.clients.cognito_idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    assert described["DeletionProtection"] == "ACTIVE"


def test_at_the_quota_nothing_is_created(ctx: Context) -> None:
    in_use = len(list_pools(ctx))
    ctx.settings = ctx.settings.model_copy(update={"user_pool_quota": in_use})
    pool = UserPool()
    with pytest.raises(TransientError) as caught:
        pool.create(ctx, pool.observe(ctx))
    assert caught.value.reason == "UserPoolQuotaReached"
    assert f"{in_use} of quota {in_use} user pools" in str(caught.value)
    assert "WPENV_USER_POOL_QUOTA" in str(caught.value)
    assert len(list_pools(ctx)) == in_use
    assert "userPoolId" not in ctx.ids

    ctx.settings = ctx.settings.model_copy(update={"user_pool_quota": in_use + 1})
    pool.create(ctx, pool.observe(ctx))  # one free: created
    assert len(list_pools(ctx)) == in_use + 1


def test_new_tenants_look_and_count_from_one_listing(
    make_ctx: MakeCtx, platform: dict[str, str]
) -> None:
    """The account's pools are listed once per TTL (17 calls at 1,000 pools), not twice per
    new tenant; the directory shows our own creates and deletes at once."""
    shared = Observations(600.0)
    first, second = make_ctx(), make_ctx()
    first.observations = second.observations = shared
    pool = UserPool()
    try:
        pool.create(first, pool.observe(first))
        clear_journal(platform["AWS_ENDPOINT_URL"])
        pool.create(second, pool.observe(second))
        made = second.ids.pop("userPoolId")  # a crash before the id was recorded
        assert pool.observe(second).ids == {"userPoolId": made}, "found: no second pool"
        pool.ensure_absent(second)
        assert made not in {p["Id"] for p in list_pools(second)}
        actions = [e.action for e in read_journal(platform["AWS_ENDPOINT_URL"])]
        assert "ListUserPools" not in actions, actions
        assert actions.count("CreateUserPool") == 1
    finally:
        for ctx in (first, second):
            ctx.observations = Observations()
            tear_down(ctx)


def test_a_pool_of_another_environment_is_never_touched(ctx: Context, make_ctx: MakeCtx) -> None:
    other_tags = {**ctx.tags, TAG_ENVIRONMENT: "elsewhere.other"}
    idp = ctx.clients.cognito_idp
    foreign = idp.create_user_pool(PoolName=ctx.names.user_pool, UserPoolTags=other_tags)
    foreign_id = foreign["UserPool"]["Id"]
    try:
        pool = UserPool()
        assert not pool.observe(ctx).exists  # same name, another environment's tag
        ctx.ids["userPoolId"] = foreign_id  # even a record pointing at it is not trusted
        assert not pool.observe(ctx).exists
        pool.ensure_absent(ctx)
        assert idp.describe_user_pool(UserPoolId=foreign_id)["UserPool"]["Id"] == foreign_id

        ctx.ids.clear()
        pool.create(ctx, pool.observe(ctx))
        assert ctx.ids["userPoolId"] != foreign_id
        assert [p["Id"] for p in our_pools(ctx)] == [ctx.ids["userPoolId"]]
        pool.ensure_absent(ctx)
        assert [p["Id"] for p in pools_named(ctx)] == [foreign_id]
    finally:
        idp.delete_user_pool(UserPoolId=foreign_id)


def _users(ctx: Context) -> None:
    """Two users in groups, as a tenant's administrator would make them."""
    idp = ctx.clients.cognito_idp
    pool_id = ctx.ids["userPoolId"]
    idp.add_custom_attributes(
        UserPoolId=pool_id, CustomAttributes=[{"Name": "api_token", "AttributeDataType": "String"}]
    )
    for email, group in (("ada@example.com", "Admin"), ("bob@example.com", "Editor")):
        idp.admin_create_user(
            UserPoolId=pool_id,
            Username=email,
            UserAttributes=[{"Name": "email", "Value": email},
                            {"Name": "custom:api_token", "Value": "not-for-archives"}],
            MessageAction="SUPPRESS",
        )
        idp.admin_add_user_to_group(UserPoolId=pool_id, Username=email, GroupName=group)
    idp.admin_add_user_to_group(UserPoolId=pool_id, Username="ada@example.com",
                                GroupName="Viewer")


def test_delete_removes_the_domain_and_a_protected_pool_without_exporting(ctx: Context) -> None:
    build(ctx, upto=3)  # pool, groups, domain
    _users(ctx)
    pool_id = ctx.ids["userPoolId"]
    assert domain_owner(ctx) == pool_id

    UserPool().ensure_absent(ctx)

    assert _archived(ctx) == []  # the "users" archive hook exports, not the delete
    assert domain_owner(ctx) is None
    assert pools_named(ctx) == []
    assert "userPoolId" not in ctx.ids


def test_lifting_the_protection_keeps_the_pools_other_settings(ctx: Context) -> None:
    """The delete's one UpdateUserPool sends the current settings, not Cognito's defaults."""
    pool = UserPool()
    pool.create(ctx, pool.observe(ctx))
    pool_id = ctx.ids["userPoolId"]
    idp = ctx.clients.cognito_idp
    sent: list[dict[str, object]] = []

    def keep(params: dict[str, object], **_: object) -> None:
        sent.append(dict(params))

    idp.meta.events.register("provide-client-params.cognito-idp.UpdateUserPool", keep)
    try:
        pool.ensure_absent(ctx)
    finally:
        idp.meta.events.unregister("provide-client-params.cognito-idp.UpdateUserPool", keep)
    (update,) = sent
    assert update["UserPoolId"] == pool_id and update["DeletionProtection"] == "INACTIVE"
    assert update["PoolName"] == ctx.names.user_pool
    assert ctx.tags.items() <= cast(dict[str, str], update["UserPoolTags"]).items()
    assert update["AdminCreateUserConfig"] == {"AllowAdminCreateUserOnly": True}
    assert update["AutoVerifiedAttributes"] == ["email"]
    assert pools_named(ctx) == []


def test_retain_tags_and_keeps_every_setting(ctx: Context) -> None:
    pool = UserPool()
    pool.create(ctx, pool.observe(ctx))
    pool_id = ctx.ids["userPoolId"]
    pool.tag(ctx, pool_id, {TAG_RETAINED: "true"})
    described = ctx.clients.cognito_idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    assert described["UserPoolTags"] == {**ctx.tags, TAG_RETAINED: "true"}
    assert described["DeletionProtection"] == "ACTIVE"
    observed = pool.observe(ctx)
    assert observed.exists and observed.up_to_date, observed.detail


def _archived(ctx: Context) -> list[str]:
    """Keys in the archive bucket under this environment's prefix."""
    prefix = f"{ctx.settings.archive_prefix}/it/{ctx.name}/"
    found = ctx.clients.s3.list_objects_v2(Bucket=ctx.settings.archive_bucket, Prefix=prefix)
    return [str(o["Key"]) for o in found.get("Contents", [])]
