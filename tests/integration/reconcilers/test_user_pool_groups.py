"""The pool's groups against moto: the spec's set, precedence, hand-made groups kept."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import MakeCtx
from tests.integration.identity import tenant_fixture
from wpenv.reconcilers.base import MISSING, Context
from wpenv.reconcilers.user_pool_groups import UserPoolGroups

pytestmark = pytest.mark.e2e


def _groups(ctx: Context) -> dict[str, dict[str, Any]]:
    found = ctx.clients.cognito_idp.list_groups(UserPoolId=ctx.ids["userPoolId"], Limit=60)
    return {g["GroupName"]: g for g in found["Groups"]}


def _with(make_ctx: MakeCtx, ctx: Context, **identity: Any) -> Context:
    other = make_ctx(tenant=ctx.names.tenant, identity=identity)
    other.ids.update(ctx.ids)
    return other


ctx = tenant_fixture(upto=1)  # a fresh tenant with its user pool


def test_create_makes_the_spec_groups_in_order(ctx: Context) -> None:
    UserPoolGroups().create(ctx, MISSING)
    have = _groups(ctx)
    assert {name: g["Precedence"] for name, g in have.items()} == {
        "Admin": 0, "Editor": 1, "Viewer": 2
    }
    assert "administrator" in have["Admin"]["Description"]
    assert "subscriber" in have["Viewer"]["Description"]


def test_spec_changes_and_hand_edits(ctx: Context, make_ctx: MakeCtx) -> None:
    groups = UserPoolGroups()
    groups.create(ctx, groups.observe(ctx))
    idp = ctx.clients.cognito_idp
    pool_id = ctx.ids["userPoolId"]
    idp.create_group(UserPoolId=pool_id, GroupName="Auditors", Description="made by hand")
    idp.update_group(UserPoolId=pool_id, GroupName="Editor", Precedence=9)
    observed = groups.observe(ctx)
    assert not observed.up_to_date and "Editor" in observed.detail
    groups.update(ctx, observed)
    assert groups.observe(ctx).up_to_date
    assert _groups(ctx)["Editor"]["Precedence"] == 1

    fewer = _with(make_ctx, ctx, groups=["Editor", "Admin", "Authors"])
    observed = groups.observe(fewer)
    assert not observed.up_to_date
    groups.update(fewer, observed)
    assert groups.observe(fewer).up_to_date
    have = _groups(ctx)
    # Viewer was ours and left the spec: removed. Auditors was made by hand: kept.
    assert set(have) == {"Editor", "Admin", "Authors", "Auditors"}
    assert [have[n]["Precedence"] for n in ("Editor", "Admin", "Authors")] == [0, 1, 2]


def test_no_pool_means_no_groups(make_ctx: MakeCtx) -> None:
    ctx = make_ctx()
    groups = UserPoolGroups()
    observed = groups.observe(ctx)
    assert not observed.exists and observed.found is None
    groups.create(ctx, observed)  # the pool step reports the missing pool; nothing happens
    groups.ensure_absent(ctx)


def test_a_pool_gone_under_a_record_means_no_groups(ctx: Context) -> None:
    groups = UserPoolGroups()
    groups.create(ctx, groups.observe(ctx))
    ctx.clients.cognito_idp.delete_user_pool(UserPoolId=ctx.ids["userPoolId"])
    assert not groups.observe(ctx).exists  # ResourceNotFoundException: gone, exactly
