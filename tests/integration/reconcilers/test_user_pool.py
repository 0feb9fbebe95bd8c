"""The tenant's user pool against moto: lifecycle, quota, ownership, export before delete."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.integration.conftest import MakeCtx
from tests.integration.identity import build, domain_owner, our_pools, pools_named, tear_down
from wpenv.plan import TAG_ENVIRONMENT
from wpenv.reconcilers.base import Context, TransientError
from wpenv.reconcilers.user_pool import UserPool, list_pools

pytestmark = pytest.mark.e2e


@pytest.fixture
def ctx(make_ctx: MakeCtx) -> Iterator[Context]:
    """A fresh tenant whose Cognito pieces are removed afterwards, whatever the test did."""
    context = make_ctx()
    yield context
    tear_down(context)


def test_lifecycle(ctx: Context, make_ctx: MakeCtx) -> None:
    pool = UserPool()
    assert not pool.observe(ctx).exists

    pool.create(ctx)
    pool_id = ctx.ids["userPoolId"]
    observed = pool.observe(ctx)
    assert observed.exists and observed.up_to_date and observed.ready, observed.detail
    assert observed.ids == {"userPoolId": pool_id}
    described = ctx.clients.cognito_idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    assert described["Name"] == ctx.names.user_pool
    assert described["UsernameAttributes"] == ["email"]
    assert described["AutoVerifiedAttributes"] == ["email"]
    assert described["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert described["DeletionProtection"] == "ACTIVE"
    assert ctx.tags.items() <= described["UserPoolTags"].items()

    pool.create(ctx)  # adopts: still one pool
    assert len(pools_named(ctx)) == 1

    fresh = make_ctx(tenant=ctx.names.tenant)  # a restarted operator with a lost status
    again = pool.observe(fresh)
    assert again.exists and again.up_to_date and again.ids == {"userPoolId": pool_id}

    pool.delete(fresh)
    pool.delete(ctx)
    assert not pool.observe(ctx).exists
    assert pools_named(ctx) == []
    assert ctx.exported == [], "a pool without users has nothing to export"


def test_hand_changed_settings_are_put_back(ctx: Context) -> None:
    pool = UserPool()
    pool.create(ctx)
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
    with pytest.raises(TransientError) as caught:
        UserPool().create(ctx)
    assert caught.value.reason == "UserPoolQuotaReached"
    assert f"{in_use} of quota {in_use} user pools" in str(caught.value)
    assert "WPENV_USER_POOL_QUOTA" in str(caught.value)
    assert len(list_pools(ctx)) == in_use
    assert "userPoolId" not in ctx.ids

    ctx.settings = ctx.settings.model_copy(update={"user_pool_quota": in_use + 1})
    UserPool().create(ctx)  # one free: created
    assert len(list_pools(ctx)) == in_use + 1


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
        pool.delete(ctx)
        assert idp.describe_user_pool(UserPoolId=foreign_id)["UserPool"]["Id"] == foreign_id

        ctx.ids.clear()
        pool.create(ctx)
        assert ctx.ids["userPoolId"] != foreign_id
        assert [p["Id"] for p in our_pools(ctx)] == [ctx.ids["userPoolId"]]
        pool.delete(ctx)
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


def test_delete_exports_users_and_groups_first(ctx: Context) -> None:
    build(ctx, upto=3)  # pool, groups, domain
    _users(ctx)
    pool_id = ctx.ids["userPoolId"]
    ctx.archive_key_prefix = f"archives/it/{ctx.name}/20261127T143000Z"

    UserPool().delete(ctx)

    key = f"{ctx.archive_key_prefix}/users.json"
    bucket = ctx.settings.archive_bucket
    assert ctx.exported == [f"s3://{bucket}/{key}"]
    s3 = ctx.clients.s3
    assert s3.head_object(Bucket=bucket, Key=key)["ServerSideEncryption"] == "AES256"
    document = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert document["userPoolId"] == pool_id
    assert [g["name"] for g in document["groups"]] == ["Admin", "Editor", "Viewer"]
    assert [g["precedence"] for g in document["groups"]] == [0, 1, 2]
    # E-mail is the sign-in alias: Cognito's user name is the user's `sub`.
    users = {u["attributes"]["email"]: u for u in document["users"]}
    assert set(users) == {"ada@example.com", "bob@example.com"}
    ada = users["ada@example.com"]
    assert ada["groups"] == ["Admin", "Viewer"] and users["bob@example.com"]["groups"] == ["Editor"]
    assert ada["username"] == ada["attributes"]["sub"]
    assert ada["enabled"] is True and ada["status"] == "FORCE_CHANGE_PASSWORD"
    assert ada["created"]
    assert "not-for-archives" not in json.dumps(document)
    # Then the domain (still attached) and the pool went.
    assert domain_owner(ctx) is None
    assert pools_named(ctx) == []


def test_without_a_caller_prefix_the_export_gets_its_own(ctx: Context) -> None:
    build(ctx, upto=2)
    _users(ctx)
    UserPool().delete(ctx)
    (uri,) = ctx.exported
    prefix = f"s3://{ctx.settings.archive_bucket}/{ctx.settings.archive_prefix}/it/{ctx.name}/"
    assert uri.startswith(prefix) and uri.endswith("Z/users.json")
