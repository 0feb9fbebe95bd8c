"""The hosted domain against moto: lifecycle, a prefix held elsewhere, moved from an old pool."""

from __future__ import annotations

import pytest

from tests.integration.conftest import MakeCtx
from tests.integration.identity import domain_owner, tenant_fixture
from wpenv.errors import PermanentError
from wpenv.plan import TAG_ENVIRONMENT
from wpenv.reconcilers.base import Context
from wpenv.reconcilers.user_pool_domain import UserPoolDomain

pytestmark = pytest.mark.e2e


ctx = tenant_fixture(upto=1)  # a fresh tenant with its user pool


def test_lifecycle(ctx: Context, make_ctx: MakeCtx) -> None:
    domain = UserPoolDomain()
    assert not domain.observe(ctx).exists
    domain.create(ctx, domain.observe(ctx))
    prefix = ctx.names.user_pool_domain
    assert ctx.ids["userPoolDomain"] == prefix
    observed = domain.observe(ctx)
    assert observed.exists and observed.up_to_date and observed.ready
    assert observed.ids == {"userPoolDomain": prefix}
    assert domain_owner(ctx) == ctx.ids["userPoolId"]

    domain.create(ctx, domain.observe(ctx))  # already ours: nothing happens
    fresh = make_ctx(tenant=ctx.names.tenant)
    assert domain.observe(fresh).exists

    domain.ensure_absent(ctx)
    domain.ensure_absent(ctx)
    assert domain_owner(ctx) is None
    assert not domain.observe(ctx).exists
    assert list(domain.managed(ctx.clients, ctx.settings)) == []  # goes with the pool


def test_a_prefix_held_by_someone_else_is_left_alone(ctx: Context) -> None:
    idp = ctx.clients.cognito_idp
    other = idp.create_user_pool(PoolName="someone-else")["UserPool"]["Id"]
    try:
        idp.create_user_pool_domain(Domain=ctx.names.user_pool_domain, UserPoolId=other)
        domain = UserPoolDomain()
        observed = domain.observe(ctx)
        assert not observed.exists
        with pytest.raises(PermanentError) as caught:
            domain.create(ctx, observed)
        assert caught.value.reason == "DomainTaken"
        assert other in str(caught.value)
        domain.ensure_absent(ctx)
        assert domain_owner(ctx) == other
    finally:
        idp.delete_user_pool_domain(Domain=ctx.names.user_pool_domain, UserPoolId=other)
        idp.delete_user_pool(UserPoolId=other)


def test_a_prefix_on_an_older_pool_of_ours_moves(ctx: Context) -> None:
    idp = ctx.clients.cognito_idp
    older = idp.create_user_pool(
        PoolName=ctx.names.user_pool,
        UserPoolTags={TAG_ENVIRONMENT: ctx.tags[TAG_ENVIRONMENT]},
    )["UserPool"]["Id"]
    try:
        idp.create_user_pool_domain(Domain=ctx.names.user_pool_domain, UserPoolId=older)
        domain = UserPoolDomain()
        domain.create(ctx, domain.observe(ctx))
        assert domain_owner(ctx) == ctx.ids["userPoolId"] != older
    finally:
        idp.delete_user_pool(UserPoolId=older)
