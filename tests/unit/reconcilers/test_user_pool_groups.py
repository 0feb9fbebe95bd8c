"""The planned groups and the changes against a pool's groups, without AWS."""

from __future__ import annotations

from typing import Any

from wpenv.engine import make_context
from wpenv.reconcilers import user_pool_groups as upg
from wpenv.reconcilers.base import Context
from wpenv.settings import Settings


def _ctx(**identity: Any) -> Context:
    spec = {"tenantId": "acme", "identity": identity}
    return make_context("ns", "acme", spec, settings=Settings(), clients=None)


def test_default_groups_in_precedence_order_with_the_operators_mark() -> None:
    ctx = _ctx()
    groups = upg.desired_groups(ctx)
    assert list(groups) == ["Admin", "Editor", "Viewer"]
    assert [g["Precedence"] for g in groups.values()] == [0, 1, 2]
    assert "administrator" in groups["Admin"]["Description"]
    assert all(upg.is_ours(ctx, g) for g in groups.values())
    assert not upg.is_ours(ctx, {"Description": "made by hand"})
    assert not upg.is_ours(ctx, {})


def test_changes_create_correct_and_remove_only_our_extra_groups() -> None:
    ctx = _ctx(groups=["Admin", "Editor"])
    wanted = upg.desired_groups(ctx)
    old = _ctx(groups=["Admin", "Editor", "Viewer"])
    have = {
        "Admin": {"GroupName": "Admin", **wanted["Admin"]},
        "Editor": {"GroupName": "Editor", **wanted["Editor"], "Precedence": 7},
        "Viewer": {"GroupName": "Viewer", **upg.desired_groups(old)["Viewer"]},
        "Auditors": {"GroupName": "Auditors", "Description": "made by hand", "Precedence": 9},
    }
    assert upg.plan_changes(ctx, have) == ([], ["Editor"], ["Viewer"])
    assert upg.plan_changes(ctx, {}) == (["Admin", "Editor"], [], [])
