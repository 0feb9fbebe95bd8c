"""Helpers the identity tests share: find a tenant's Cognito pieces, clean them up."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import MakeCtx
from wpenv.plan import TAG_ENVIRONMENT
from wpenv.reconcilers.base import Context
from wpenv.reconcilers.client_secret import ClientSecret
from wpenv.reconcilers.placement import Placement
from wpenv.reconcilers.user_pool import UserPool, list_pools
from wpenv.reconcilers.user_pool_client import UserPoolClient
from wpenv.reconcilers.user_pool_domain import UserPoolDomain
from wpenv.reconcilers.user_pool_groups import UserPoolGroups

IDENTITY = (UserPool, UserPoolGroups, UserPoolDomain, UserPoolClient, ClientSecret)


def pools_named(ctx: Context) -> list[dict[str, Any]]:
    """DescribeUserPool of every pool with the tenant's name, whoever's environment it is."""
    idp = ctx.clients.cognito_idp
    return [
        dict(idp.describe_user_pool(UserPoolId=p["Id"])["UserPool"])
        for p in list_pools(ctx)
        if p["Name"] == ctx.names.user_pool
    ]


def our_pools(ctx: Context) -> list[dict[str, Any]]:
    """The pools tagged with this context's environment."""
    mine = ctx.tags[TAG_ENVIRONMENT]
    return [p for p in pools_named(ctx) if (p.get("UserPoolTags") or {}).get(TAG_ENVIRONMENT)
            == mine]


def domain_owner(ctx: Context) -> str | None:
    """The pool holding the tenant's domain prefix, if any."""
    found = ctx.clients.cognito_idp.describe_user_pool_domain(Domain=ctx.names.user_pool_domain)
    owner = (found.get("DomainDescription") or {}).get("UserPoolId")
    return str(owner) if owner else None


def build(ctx: Context, upto: int = len(IDENTITY)) -> None:
    """Place the tenant (its URL follows), then create the first `upto` identity pieces."""
    placement = Placement()
    placement.create(ctx, placement.observe(ctx))
    for kind in IDENTITY[:upto]:
        resource = kind()
        observed = resource.observe(ctx)
        if not observed.exists:
            resource.create(ctx, observed)


def tear_down(ctx: Context) -> None:
    """Remove every identity piece of the tenant (rollback order), whatever a test did."""
    for kind in reversed(IDENTITY):
        kind().ensure_absent(ctx)
    ctx.ids.pop("userPoolId", None)
    while our_pools(ctx):  # pools a test left with a lost record
        UserPool().ensure_absent(ctx)


def tenant_fixture(upto: int) -> Any:
    """A `ctx` fixture: a fresh tenant with its first `upto` identity pieces, all removed after.

    A factory, so each step's tests start from the pieces it needs and no further.
    """

    @pytest.fixture
    def ctx(make_ctx: MakeCtx) -> Iterator[Context]:
        context = make_ctx()
        build(context, upto=upto)
        yield context
        tear_down(context)

    return ctx


def read_secret(ctx: Context, arn: str) -> Any:
    """A secret's current value, parsed."""
    return json.loads(ctx.clients.secretsmanager.get_secret_value(SecretId=arn)["SecretString"])
