"""The client secret against moto: value from the client, follows a new client, forced delete."""

from __future__ import annotations

import json

import pytest

from tests.integration.identity import read_secret, tenant_fixture
from wpenv.plan import TAG_RETAINED
from wpenv.reconcilers.base import MISSING, Context
from wpenv.reconcilers.client_secret import ClientSecret
from wpenv.reconcilers.db_secret import DatabaseSecret
from wpenv.reconcilers.user_pool_client import UserPoolClient

pytestmark = pytest.mark.e2e


def _client_secret(ctx: Context) -> tuple[str, str]:
    found = ctx.clients.cognito_idp.describe_user_pool_client(
        UserPoolId=ctx.ids["userPoolId"], ClientId=ctx.ids["userPoolClientId"]
    )["UserPoolClient"]
    return str(found["ClientId"]), str(found["ClientSecret"])


def _count(ctx: Context) -> int:
    name = ctx.names.client_secret
    pages = ctx.clients.secretsmanager.get_paginator("list_secrets").paginate(
        Filters=[{"Key": "name", "Values": [name]}]
    )
    return sum(1 for page in pages for s in page["SecretList"] if s["Name"] == name)


ctx = tenant_fixture(upto=4)  # a fresh tenant with pool, groups, domain and client


def test_create_stores_the_clients_id_and_secret_out_of_sight(ctx: Context) -> None:
    secret = ClientSecret()
    secret.create(ctx, MISSING)
    arn = ctx.ids["clientSecretArn"]
    client_id, client_secret = _client_secret(ctx)
    assert read_secret(ctx, arn) == {"client_id": client_id, "client_secret": client_secret}
    assert client_secret not in repr(secret.observe(ctx))
    described = ctx.clients.secretsmanager.describe_secret(SecretId=arn)
    assert described["Name"] == ctx.names.client_secret
    assert ctx.tags.items() <= {t["Key"]: t["Value"] for t in described["Tags"]}.items()

    secret.ensure_absent(ctx)
    secret.create(ctx, secret.observe(ctx))  # forced deletion frees the name at once
    assert secret.observe(ctx).up_to_date


def test_a_new_client_is_followed(ctx: Context) -> None:
    secret = ClientSecret()
    secret.create(ctx, secret.observe(ctx))
    arn = ctx.ids["clientSecretArn"]
    old_id, old_secret = _client_secret(ctx)
    # Rotation by hand (HLD 6.2): the client is replaced; the secret must follow.
    client = UserPoolClient()
    client.ensure_absent(ctx)
    assert "userPoolClientId" not in ctx.ids
    client.create(ctx, client.observe(ctx))
    new_id, new_secret = _client_secret(ctx)
    assert new_id != old_id

    observed = secret.observe(ctx)
    assert not observed.up_to_date
    assert "current id and secret" in observed.detail
    for value in (old_secret, new_secret):
        assert value not in observed.detail and value not in repr(observed)
        assert value not in json.dumps(observed.found, default=str)
    secret.update(ctx, observed)
    assert secret.observe(ctx).up_to_date
    assert read_secret(ctx, arn) == {"client_id": new_id, "client_secret": new_secret}


def test_a_secret_scheduled_for_deletion_is_restored(ctx: Context) -> None:
    secret = ClientSecret()
    secret.create(ctx, secret.observe(ctx))
    arn = ctx.ids["clientSecretArn"]
    ctx.clients.secretsmanager.delete_secret(SecretId=arn, RecoveryWindowInDays=7)
    observed = secret.observe(ctx)
    assert not observed.exists
    secret.create(ctx, observed)
    observed = secret.observe(ctx)
    assert observed.exists and observed.up_to_date and observed.ids == {"clientSecretArn": arn}
    assert _count(ctx) == 1


def test_a_secret_scheduled_for_deletion_is_deleted_at_once(ctx: Context) -> None:
    """The forced delete also takes a secret already in its recovery window."""
    secret = ClientSecret()
    secret.create(ctx, secret.observe(ctx))
    ctx.clients.secretsmanager.delete_secret(
        SecretId=ctx.ids["clientSecretArn"], RecoveryWindowInDays=7
    )
    secret.ensure_absent(ctx)
    listed = ctx.clients.secretsmanager.list_secrets(
        IncludePlannedDeletion=True, Filters=[{"Key": "name", "Values": [ctx.names.client_secret]}]
    )["SecretList"]
    assert [s["Name"] for s in listed if s["Name"] == ctx.names.client_secret] == []


def test_retain_tags_the_recorded_secret(ctx: Context) -> None:
    secret = ClientSecret()
    secret.create(ctx, secret.observe(ctx))
    arn = ctx.ids["clientSecretArn"]
    secret.tag(ctx, arn, {TAG_RETAINED: "true"})
    described = ctx.clients.secretsmanager.describe_secret(SecretId=arn)
    assert {t["Key"]: t["Value"] for t in described["Tags"]}[TAG_RETAINED] == "true"


def test_the_listing_holds_only_client_secrets(ctx: Context) -> None:
    secret = ClientSecret()
    secret.create(ctx, secret.observe(ctx))
    arn = ctx.ids["clientSecretArn"]
    settings, clients = ctx.settings, ctx.clients
    database = DatabaseSecret()
    database.create(ctx, database.observe(ctx))
    try:
        (item,) = [f for f in secret.managed(clients, settings) if f.id == arn]
        assert ctx.tags.items() <= item.tags.items()
        assert item.details["name"] == ctx.names.client_secret
        assert all(f.details["name"].endswith("/oidc-client")
                   for f in secret.managed(clients, settings))
        assert arn not in {f.id for f in database.managed(clients, settings)}
        assert ctx.ids["dbSecretArn"] not in {f.id for f in secret.managed(clients, settings)}
    finally:
        database.ensure_absent(ctx)
