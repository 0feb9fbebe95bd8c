"""users.json: the export the "users" hook writes before a user pool goes."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.integration.conftest import MakeCtx
from tests.integration.identity import build, tear_down
from tests.integration.reconcilers.test_user_pool import _users
from wpenv.archive.hooks import Deprovisioning, Everyday, put_users
from wpenv.archive.users import export_document
from wpenv.reconcilers.base import Context
from wpenv.reconcilers.user_pool import UserPool

pytestmark = pytest.mark.e2e


@pytest.fixture
def ctx(make_ctx: MakeCtx) -> Iterator[Context]:
    """A fresh tenant whose Cognito pieces are removed afterwards."""
    context = make_ctx()
    yield context
    tear_down(context)


def test_export_writes_users_and_groups(ctx: Context) -> None:
    build(ctx, upto=3)  # pool, groups, domain
    _users(ctx)
    pool_id = ctx.ids["userPoolId"]
    described = UserPool().find(ctx)
    assert described is not None
    prefix = f"archives/it/{ctx.name}/20261127T143000Z"

    uri = put_users(ctx, prefix, export_document(ctx.clients, ctx, described))

    key = f"{prefix}/users.json"
    bucket = ctx.settings.archive_bucket
    assert uri == f"s3://{bucket}/{key}"
    s3 = ctx.clients.s3
    assert s3.head_object(Bucket=bucket, Key=key)["ServerSideEncryption"] == "AES256"
    document = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    again = export_document(ctx.clients, ctx, described)
    assert document == {**again, "exportedAt": document["exportedAt"]}
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


def test_the_everyday_hook_exports_to_a_fresh_prefix_only_when_there_are_users(
    ctx: Context,
) -> None:
    build(ctx, upto=2)
    pool = UserPool()
    assert Everyday().users(ctx, pool, pool.observe(ctx)) is None, "no users: nothing to keep"
    _users(ctx)
    note = Everyday().users(ctx, pool, pool.observe(ctx))
    assert note is not None and note.reason == "UsersExported"
    uri = note.message.rpartition(" ")[2]
    prefix = f"s3://{ctx.settings.archive_bucket}/{ctx.settings.archive_prefix}/it/{ctx.name}/"
    assert uri.startswith(prefix) and uri.endswith("Z/users.json")


def test_deprovisioning_exports_even_an_empty_pool_and_records_it(ctx: Context) -> None:
    build(ctx, upto=1)
    pool = UserPool()
    hooks = Deprovisioning(ctx.settings.archive_bucket,
                           f"{ctx.settings.archive_prefix}/it/{ctx.name}/20261127T143000Z")
    hooks.start(ctx)
    hooks.users(ctx, pool, pool.observe(ctx))
    assert hooks.manifest is not None and hooks.manifest.users is not None
    assert hooks.locations["users"].endswith("/users.json")
