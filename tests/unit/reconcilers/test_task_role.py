"""The task role's policy documents, without AWS: only the tenant's own things."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import pytest

from wpenv.engine import make_context
from wpenv.errors import TransientError
from wpenv.reconcilers import task_role as tr
from wpenv.reconcilers.base import Context
from wpenv.settings import Settings

AP_ARN = "arn:aws:elasticfilesystem:eu-west-1:111122223333:access-point/fsap-acme"


def _ctx(tenant: str = "acme", ap_arn: str | None = AP_ARN) -> Context:
    settings = Settings(file_system_id="fs-123", region="eu-west-1", load_balancer_arns=[])
    ids = {"accessPointArn": ap_arn} if ap_arn else {}
    return make_context(
        "ns", tenant, {"tenantId": tenant}, settings=settings, clients=None, ids=ids
    )


def _statements(ctx: Context) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in tr.desired_policy(ctx, "111122223333")["Statement"]}


def test_policy_is_the_tenants_access_point_only() -> None:
    ctx = _ctx()
    by_sid = _statements(ctx)
    assert list(by_sid) == ["MountOwnAccessPoint"]  # ECS's part is the execution role's
    efs = by_sid["MountOwnAccessPoint"]
    assert efs["Resource"] == "arn:aws:elasticfilesystem:eu-west-1:111122223333:file-system/fs-123"
    assert efs["Condition"] == {"StringEquals": {"elasticfilesystem:AccessPointArn": AP_ARN}}
    assert sorted(efs["Action"]) == [
        "elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite",
    ]
    text = json.dumps(tr.desired_policy(ctx, "111122223333"))
    assert '"*"' not in text  # no wildcard resource or action anywhere
    assert "fsap-" in text and text.count("access-point/") == 1
    for execution_only in ("secretsmanager:", "logs:", "ecr:"):
        assert execution_only not in text


def test_every_statement_is_an_allow_scoped_to_the_access_point() -> None:
    for statement in _statements(_ctx()).values():
        assert statement["Effect"] == "Allow"
        assert "Condition" in statement


def test_another_tenant_gets_another_access_point() -> None:
    mine = _statements(_ctx("acme"))
    theirs = _statements(_ctx("acmecorp", ap_arn=AP_ARN.replace("acme", "acmecorp")))
    assert mine["MountOwnAccessPoint"]["Condition"] != theirs["MountOwnAccessPoint"]["Condition"]


def test_policy_waits_for_the_access_point() -> None:
    with pytest.raises(TransientError) as raised:
        tr.desired_policy(_ctx(ap_arn=None), "111122223333")
    assert raised.value.reason == "WaitingForAccessPoint"


def test_trust_policy_is_for_ecs_tasks_only() -> None:
    (statement,) = tr.desired_trust_policy()["Statement"]
    assert statement["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
    assert statement["Action"] == "sts:AssumeRole"


def test_documents_compare_as_data_whatever_the_encoding() -> None:
    wanted = tr.desired_policy(_ctx(), "111122223333")
    as_json = json.dumps(wanted, indent=2)
    assert tr.same_document(wanted, wanted)
    assert tr.same_document(as_json, wanted)
    assert tr.same_document(urllib.parse.quote(json.dumps(wanted)), wanted)
    reordered = json.loads(as_json)
    reordered["Statement"][0]["Action"].reverse()
    assert tr.same_document(reordered, wanted)
    widened = json.loads(as_json)
    widened["Statement"][0]["Resource"] = "*"
    assert not tr.same_document(widened, wanted)


def test_role_name_of_an_arn_and_declarations() -> None:
    assert tr.role_name("arn:aws:iam::1:role/some/path/wpenv-acme-task") == "wpenv-acme-task"
    resource = tr.TaskRole()
    assert resource.gone == {"NoSuchEntity"} and resource.needs == ("AccessPoint",)
    assert resource.ids == ("taskRoleArn",) and resource.retainable
    assert resource.group == "Permissions" and resource.suffix == "-task"
    assert resource.role_name(_ctx()) == "wpenv-acme-task"


def test_a_missing_or_other_boundary_differs_only_when_one_is_set() -> None:
    from wpenv.reconcilers.iam_role import boundary_differs  # noqa: PLC0415
    from wpenv.settings import Settings  # noqa: PLC0415

    ours = "arn:aws-cn:iam::1:policy/wpenv-tenant-boundary"
    bounded = Settings(role_permissions_boundary_arn=ours)
    with_ours = {"PermissionsBoundary": {"PermissionsBoundaryArn": ours}}
    other = {"PermissionsBoundary": {"PermissionsBoundaryArn": ours + "-wide"}}
    assert not boundary_differs(bounded, with_ours)
    assert boundary_differs(bounded, {}) and boundary_differs(bounded, other)
    unbounded = Settings(role_permissions_boundary_arn="")
    assert not boundary_differs(unbounded, {})  # none configured: none checked
