"""The operator's IAM policy and the tenant roles' permissions boundary, linted and read.

parliament (PyPI, Duo Labs) checks a policy against its copy of AWS's "Actions, resources,
and condition keys" pages: unknown actions, condition keys an action does not support,
resource ARNs of the wrong shape, resources that are effectively `*`. Both documents must
come out without findings, except the ones in IGNORED, each with the reason it is wrong or
accepted. tests/unit/test_iam_policy.py checks, next to this, that the policy grants every
call the code makes and nothing else.

What the policy must keep saying is checked here too, because parliament cannot know it:
- every role the operator creates carries the tenant boundary (CreateRole and
  PutRolePermissionsBoundary only with `iam:PermissionsBoundary` naming it, and an explicit
  Deny otherwise), the boundary cannot be removed and the boundary policy cannot be changed;
- creating needs the operator's managed-by tag in the request, everything else that
  writes needs it on the resource (`aws:RequestTag` / `aws:ResourceTag`);
- no ARN names a partition (`arn:*:`), so one document serves aws, aws-cn and aws-us-gov;
- the boundary allows every action the two tenant roles' inline policies grant.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from parliament import analyze_policy_string

from tests.unit.test_iam_policy import POLICY, REPO, allows, load_policy
from wpenv.reconcilers import execution_role, task_role

BOUNDARY = REPO / "manifests" / "overlays" / "production" / "tenant-boundary.json"
BOUNDARY_NAME = "wpenv-tenant-boundary"
MANAGED_BY = "app.kubernetes.io/managed-by"
OPERATOR = "wpenv-operator"

# (document, issue, statement Sid) -> why the finding is wrong or accepted.
IGNORED: dict[tuple[str, str, str], str] = {
    ("iam-policy.json", "RESOURCE_MISMATCH", "CreateTagged"): (
        "parliament wants CreateRule's network-load-balancer listener format too; the "
        "operator adds rules to application load balancers only (listener/app/*)"
    ),
    ("iam-policy.json", "RESOURCE_MISMATCH", "ManageTagged"): (
        "the same for ModifyRule / DeleteRule: listener-rule/app/* is the only kind used"
    ),
    ("iam-policy.json", "UNKNOWN_CONDITION_FOR_ACTION", "ElbTagOnCreate"): (
        "parliament reads the Classic Load Balancer entry of the shared elasticloadbalancing "
        "prefix; ELBv2's AddTags supports elasticloadbalancing:CreateAction (\"ELB API "
        "permissions to tag resources during creation\")"
    ),
    ("iam-policy.json", "MISMATCHED_TYPE_BUT_USABLE", "IamCreateBoundedRoles"): (
        "iam:PermissionsBoundary is a String key whose value is the boundary's ARN; "
        "StringLike matches it with the partition wildcard, as parliament says is usable"
    ),
    ("iam-policy.json", "MISMATCHED_TYPE_BUT_USABLE", "IamOwnBoundedRoles"): "as above",
    ("iam-policy.json", "MISMATCHED_TYPE_BUT_USABLE", "DenyUnboundedRoles"): "as above",
    ("iam-policy.json", "RESOURCE_EFFECTIVELY_STAR", "IamInstanceProfiles"): (
        "a profile added to a tenant role by hand blocks DeleteRole and may have any name; "
        "RemoveRoleFromInstanceProfile only takes our own roles out of it"
    ),
    ("tenant-boundary.json", "RESOURCE_EFFECTIVELY_STAR", "MountThroughAccessPoints"): (
        "the boundary is the upper bound of every tenant role; the task role's inline policy "
        "names the one file system and the tenant's access point"
    ),
    ("tenant-boundary.json", "RESOURCE_EFFECTIVELY_STAR", "PullImages"): (
        "a tenant's image may come from any repository; the execution role's inline "
        "policy names the image's repository"
    ),
}


def _statement_at(text: str, line: int) -> str:
    """The Sid of the statement holding `line`: a statement's first line, or one inside it.

    Every statement of both documents starts with its Sid, so it is the nearest Sid at or
    after the reported line when that line opens a statement, else the nearest before it.
    """
    lines = text.splitlines()
    opening = lines[line - 1].strip() == "{" if 0 < line <= len(lines) else False
    candidates = range(line, min(line + 2, len(lines))) if opening else range(line - 1, -1, -1)
    for number in candidates:
        found = re.search(r'"Sid":\s*"([^"]+)"', lines[number])
        if found:
            return found[1]
    return "?"


def findings(path: Path) -> Iterator[tuple[str, str, str, str]]:
    """(document, issue, Sid, detail) of every parliament finding on the document."""
    text = path.read_text()
    for finding in analyze_policy_string(text).findings:
        line = int((finding.location or {}).get("line") or 0)
        yield path.name, finding.issue, _statement_at(text, line), str(finding.detail)[:300]


@pytest.mark.parametrize("path", [POLICY, BOUNDARY], ids=lambda p: p.name)
def test_parliament_finds_nothing_beyond_the_justified_ignores(path: Path) -> None:
    """Every finding is one IGNORED explains; anything new fails with its details."""
    new = [f for f in findings(path) if f[:3] not in IGNORED]
    assert not new, "\n".join(map(str, new))


def test_every_ignore_is_still_needed() -> None:
    """An ignore whose finding went away is removed, so IGNORED stays an honest list."""
    seen = {f[:3] for path in (POLICY, BOUNDARY) for f in findings(path)}
    assert set(IGNORED) <= seen, set(IGNORED) - seen


def test_the_linter_would_catch_a_condition_key_an_action_lacks() -> None:
    """The check itself: a tag condition on an action that does not support it is found."""
    document = {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": "secretsmanager:ListSecrets",
            "Resource": "*",
            "Condition": {"StringEquals": {"iam:PermissionsBoundary": "x"}},
        }],
    }
    issues = {f.issue for f in analyze_policy_string(json.dumps(document)).findings}
    assert "UNKNOWN_CONDITION_FOR_ACTION" in issues


def _statements(document: dict[str, Any], effect: str, action: str) -> list[dict[str, Any]]:
    return [
        s for s in document["Statement"]
        if s["Effect"] == effect and allows(s["Action"] if isinstance(s["Action"], list)
                                            else [s["Action"]], action)
    ]


def _boundary_condition(statement: dict[str, Any]) -> str:
    condition = statement.get("Condition") or {}
    operator = "StringLike" if statement["Effect"] == "Allow" else "StringNotLike"
    return str((condition.get(operator) or {}).get("iam:PermissionsBoundary", ""))


@pytest.mark.parametrize(
    "action",
    ["iam:CreateRole", "iam:PutRolePermissionsBoundary", "iam:PutRolePolicy",
     "iam:DeleteRolePolicy", "iam:DetachRolePolicy"],
)
def test_roles_are_created_and_changed_only_under_the_boundary(action: str) -> None:
    """Each statement that allows the action requires our boundary on the role."""
    policy = load_policy()
    statements = _statements(policy, "Allow", action)
    assert statements, action
    for statement in statements:
        assert _boundary_condition(statement).endswith(f":policy/{BOUNDARY_NAME}"), statement


def test_a_role_without_the_boundary_is_denied_outright() -> None:
    """Whatever else grants the operator IAM rights, an unbounded role is an explicit deny."""
    policy = load_policy()
    for action in ("iam:CreateRole", "iam:PutRolePermissionsBoundary"):
        denies = _statements(policy, "Deny", action)
        assert any(_boundary_condition(s).endswith(BOUNDARY_NAME) for s in denies), action


@pytest.mark.parametrize(
    "action",
    ["iam:DeleteRolePermissionsBoundary", "iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion",
     "iam:DeletePolicy", "iam:DeletePolicyVersion"],
)
def test_the_boundary_can_be_neither_removed_nor_changed(action: str) -> None:
    """Unconditional denies: on every role, and on the boundary policy itself."""
    denies = [s for s in _statements(load_policy(), "Deny", action) if "Condition" not in s]
    assert denies, action
    resources = [r for s in denies for r in ([s["Resource"]] if isinstance(s["Resource"], str)
                                             else s["Resource"])]
    assert "*" in resources or any(r.endswith(f":policy/{BOUNDARY_NAME}") for r in resources)


def test_writes_are_conditioned_on_the_managed_by_tag() -> None:
    """Creates carry the tag in the request; changes need it on the resource."""
    statements = {s["Sid"]: s for s in load_policy()["Statement"]}
    create = statements["CreateTagged"]["Condition"]["StringEquals"]
    manage = statements["ManageTagged"]["Condition"]["StringEquals"]
    assert create == {f"aws:RequestTag/{MANAGED_BY}": OPERATOR}
    assert manage == {f"aws:ResourceTag/{MANAGED_BY}": OPERATOR}
    for action in ("ecs:CreateService", "secretsmanager:CreateSecret", "logs:CreateLogGroup",
                   "elasticloadbalancing:CreateTargetGroup", "ec2:CreateSecurityGroup",
                   "elasticfilesystem:CreateAccessPoint", "ecs:RegisterTaskDefinition"):
        assert allows(statements["CreateTagged"]["Action"], action), action
    for action in ("ecs:UpdateService", "ecs:DeleteService", "secretsmanager:DeleteSecret",
                   "secretsmanager:RotateSecret", "logs:DeleteLogGroup", "iam:DeleteRole",
                   "elasticloadbalancing:DeleteRule", "ec2:DeleteSecurityGroup",
                   "cognito-idp:DeleteUserPool", "elasticfilesystem:DeleteAccessPoint",
                   "application-autoscaling:DeregisterScalableTarget"):
        assert allows(statements["ManageTagged"]["Action"], action), action


@pytest.mark.parametrize("path", [POLICY, BOUNDARY], ids=lambda p: p.name)
def test_no_arn_names_a_partition(path: Path) -> None:
    """`arn:*:` everywhere: an account lives in one partition, so the wildcard adds nothing."""
    arns = re.findall(r'"(arn:[^"]*)"', path.read_text())
    assert arns
    assert not [arn for arn in arns if not arn.startswith("arn:*:")]


def test_the_operator_code_names_no_partition() -> None:
    """The partition comes from STS's answer, never from an `arn:aws:` literal."""
    hits = [
        f"{path.relative_to(REPO)}:{number}"
        for path in sorted((REPO / "wpenv").rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "arn:aws:" in line
    ]
    assert not hits, hits


class _Ctx:
    """Just what the two roles' policy builders read (recorded ids, settings, names, spec)."""

    def __init__(self) -> None:
        self.ids = {
            "accessPointArn": "arn:aws-cn:elasticfilesystem:cn-north-1:1:access-point/fsap-1",
            "dbSecretArn": "arn:aws-cn:secretsmanager:cn-north-1:1:secret:wpenv/acme/database-x",
            "siteSecretArn": "arn:aws-cn:secretsmanager:cn-north-1:1:secret:wpenv/acme/wordpress-x",
        }
        self.settings = SimpleNamespace(region="cn-north-1", file_system_id="fs-1")
        self.names = SimpleNamespace(tenant="acme", log_group="/wpenv/acme")
        self.spec = SimpleNamespace(image="wordpress:6", identity=SimpleNamespace(enabled=False))


def test_the_boundary_allows_what_the_tenant_roles_are_granted() -> None:
    """A role's effective rights are its policy AND the boundary: nothing may fall out."""
    boundary = json.loads(BOUNDARY.read_text())
    patterns = [a for s in boundary["Statement"] if s["Effect"] == "Allow"
                for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])]
    ctx: Any = _Ctx()
    granted = [
        action
        for build in (task_role.desired_policy, execution_role.desired_policy)
        for statement in build(ctx, "1", "aws-cn")["Statement"]
        for action in ([statement["Action"]] if isinstance(statement["Action"], str)
                       else statement["Action"])
    ]
    assert granted
    assert not [a for a in granted if not allows(patterns, a)]
