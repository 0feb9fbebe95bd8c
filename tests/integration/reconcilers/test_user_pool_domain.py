"""The hosted domain against moto: ours attached, a prefix held elsewhere, moved from ours."""

from __future__ import annotations

import pytest

from tests.integration.identity import domain_owner, tenant_fixture
from wpenv.errors import PermanentError
from wpenv.plan import TAG_ENVIRONMENT
from wpenv.reconcilers.base import MISSING, Context
from wpenv.reconcilers.user_pool_domain import UserPoolDomain

pytestmark = pytest.mark.e2e


ctx = tenant_fixture(upto=1)  # a fresh tenant with its user pool


def test_create_attaches_the_prefix_to_our_pool_and_delete_detaches_it(ctx: Context) -> None:
    domain = UserPoolDomain()
    domain.create(ctx, MISSING)
    assert ctx.ids["userPoolDomain"] == ctx.names.user_pool_domain
    assert domain_owner(ctx) == ctx.ids["userPoolId"]
    domain.ensure_absent(ctx)
    assert domain_owner(ctx) is None


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
