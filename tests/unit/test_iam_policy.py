"""The operator's IAM policy (the production overlay's iam-policy.json) allows every AWS call.

The calls are found statically: `ast` walks every module of `wpenv/` and collects the
methods used on boto3 clients, which the package reaches in a few ways only:

- `<anything>.<service>` where `<service>` is an attribute name `wpenv.aws.Clients` serves
  (`ctx.clients.ecs`, `clients.cognito_idp`, `self.ctx.clients.s3`, `self.s3`);
- a local name assigned from such an expression (`idp = ctx.clients.cognito_idp`), visible
  in the function that assigns it and in the functions nested in it;
- a parameter named after the service (`def put_bytes(s3: Any, ...)`), the convention of
  the archive modules.

A method referenced without being called (`_ignore_missing(iam.delete_role, ...)`) counts
the same as a call, and `get_paginator("op")` counts as the operation `op`. Every client
expression has to end in one of the shapes above or be handed to a `wpenv` function whose
parameter is named after the service; anything else (a client returned, stored in a
container, handed to a differently named parameter, `get_waiter`) is reported as a place
the scan cannot follow, so the test fails instead of missing calls silently.

botocore's service model names each method's operation (`meta.method_to_api_mapping`);
with the IAM prefix of its service that is the IAM action, except for S3, which authorises
several operations under another action (multipart parts under `s3:PutObject`, listing
under `s3:ListBucket`). Some permissions follow from arguments rather than calls:
`IMPLICIT` lists them, and the policy must grant those too. Finally the policy must not
grant anything the code no longer needs, and must fit an inline role policy. Only actions
are checked: which resources a call touches is not known statically, so the scoping of
each statement (names, tags, placeholders) is reviewed by hand.
"""

from __future__ import annotations

import ast
import fnmatch
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import boto3
import pytest

from wpenv import aws

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "wpenv"
PRODUCTION = REPO / "manifests" / "overlays" / "production"
POLICY = PRODUCTION / "iam-policy.json"
PRODUCTION_KUSTOMIZATION = PRODUCTION / "kustomization.yaml"

INLINE_POLICY_LIMIT = 10_240  # characters, whitespace not counted

# boto3 service name -> IAM service prefix (they differ for EFS, ELBv2 and the tagging API).
IAM_PREFIX = {
    "application-autoscaling": "application-autoscaling",
    "cognito-idp": "cognito-idp",
    "ec2": "ec2",
    "ecs": "ecs",
    "efs": "elasticfilesystem",
    "elbv2": "elasticloadbalancing",
    "iam": "iam",
    "logs": "logs",
    "resourcegroupstaggingapi": "tag",
    "s3": "s3",
    "secretsmanager": "secretsmanager",
    "sts": "sts",
}

# Operations whose IAM action is not `<prefix>:<OperationName>`.
ACTION_OVERRIDES: dict[tuple[str, str], tuple[str, ...]] = {
    ("s3", "CreateMultipartUpload"): ("s3:PutObject",),
    ("s3", "UploadPart"): ("s3:PutObject",),
    ("s3", "CompleteMultipartUpload"): ("s3:PutObject",),
    ("s3", "UploadPartCopy"): ("s3:GetObject", "s3:PutObject"),
    ("s3", "CopyObject"): ("s3:GetObject", "s3:PutObject"),
    ("s3", "HeadObject"): ("s3:GetObject",),
    ("s3", "HeadBucket"): ("s3:ListBucket",),
    ("s3", "ListObjects"): ("s3:ListBucket",),
    ("s3", "ListObjectsV2"): ("s3:ListBucket",),
    ("s3", "ListParts"): ("s3:ListMultipartUploadParts",),
    ("s3", "DeleteObjects"): ("s3:DeleteObject",),
}

# Permissions no client method names, and why the operator needs them.
IMPLICIT = {
    "iam:PassRole": "RegisterTaskDefinition names the tenant's task role and execution role",
    "kms:GenerateDataKey": "PutObject / CreateMultipartUpload with SSE-KMS (archive_kms_key_id)",
    "kms:Decrypt": "GetObject of SSE-KMS archives; UploadPart of an SSE-KMS multipart upload",
    "lambda:InvokeFunction": "RotateSecret needs it on the rotation function (settings)",
    "ecs:TagResource": "RegisterTaskDefinition / CreateService with tags (tag-on-create)",
    "elasticloadbalancing:AddTags": "CreateTargetGroup / CreateRule with Tags (tag-on-create)",
    "ec2:CreateTags": "CreateSecurityGroup with TagSpecifications (tag-on-create)",
    "elasticfilesystem:TagResource": "CreateAccessPoint with Tags (tag-on-create)",
    "secretsmanager:TagResource": "CreateSecret with Tags (tag-on-create)",
    "iam:TagRole": "CreateRole with Tags (tag-on-create)",
    "logs:TagResource": "CreateLogGroup with tags (tag-on-create: TagResource or TagLogGroup)",
    "application-autoscaling:TagResource": "RegisterScalableTarget with Tags (tag-on-create)",
    "iam:CreateServiceLinkedRole": "the first RegisterScalableTarget of an ECS service creates "
    "AWSServiceRoleForApplicationAutoScaling_ECSService",
    "cloudwatch:PutMetricAlarm": "PutScalingPolicy (target tracking) creates the alarms",
    "cloudwatch:DescribeAlarms": "PutScalingPolicy (target tracking) reads the alarms",
    "cloudwatch:DeleteAlarms": "DeleteScalingPolicy / DeregisterScalableTarget remove them",
}

# Attributes of a boto3 client that are no AWS operation.
NOT_OPERATIONS = {"meta", "exceptions", "can_paginate", "close"}
# Client attributes of `wpenv.aws.Clients`: `cognito_idp` for "cognito-idp", ...
CLIENT_ATTRIBUTES = {service.replace("-", "_"): service for service in aws.SERVICES}

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
ScopeNode = FunctionNode | ast.Module


@dataclass(frozen=True)
class Use:
    """One use of a boto3 client method (or a paginator's operation) in the source."""

    service: str  # boto3 service name, "ecs"
    method: str  # client method name, "update_service"
    where: str  # "wpenv/retain.py:34"


@dataclass
class ScanResult:
    """What the scan found: the uses, and the places it could not follow a client."""

    uses: list[Use] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Signature:
    """The parameter names of a function or class defined in the scanned code."""

    positional: tuple[str, ...]  # without `self` / `cls` for methods and classes
    keyword: frozenset[str]


def _is_staticmethod(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in node.decorator_list)


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef, bound: bool) -> Signature:
    positional = [a.arg for a in (*node.args.posonlyargs, *node.args.args)]
    if bound and positional:
        positional = positional[1:]
    keyword = {a.arg for a in (*node.args.args, *node.args.kwonlyargs)}
    return Signature(tuple(positional), frozenset(keyword))


def _is_dataclass(node: ast.ClassDef) -> bool:
    return any(
        (isinstance(d, ast.Name) and d.id == "dataclass")
        or (isinstance(d, ast.Call) and isinstance(d.func, ast.Name) and d.func.id == "dataclass")
        for d in node.decorator_list
    )


def _fields(node: ast.ClassDef) -> Signature:
    """A dataclass's generated __init__: its annotated fields, in order."""
    names = tuple(item.target.id for item in node.body
                  if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name))
    return Signature(names, frozenset(names))


def definitions(tree: ast.Module) -> dict[str, list[Signature]]:
    """The functions, methods and classes (by their __init__, or a dataclass's fields) of
    one module, by name."""
    found: dict[str, list[Signature]] = defaultdict(list)
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            if _is_dataclass(node):
                found[node.name].append(_fields(node))
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    bound = not _is_staticmethod(item)
                    found[item.name].append(_signature(item, bound))
                    if item.name == "__init__":
                        found[node.name].append(_signature(item, bound))
        elif isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    found[item.name].append(_signature(item, bound=False))
    return dict(found)


def imported_names(tree: ast.Module) -> dict[str, tuple[str, str]]:
    """`from module import name as alias` of one module: alias -> (module, name)."""
    return {
        alias.asname or alias.name: (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and not node.level
        for alias in node.names
    }


def module_name(label: str) -> str:
    """`wpenv/archive/restore.py` -> `wpenv.archive.restore` (a package for __init__)."""
    parts = label.removesuffix(".py").split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@dataclass
class Index:
    """The definitions of every scanned module, to see where a handed-over client lands."""

    modules: dict[str, dict[str, list[Signature]]]
    everywhere: dict[str, list[Signature]]

    @classmethod
    def of(cls, modules: Mapping[str, ast.Module]) -> Index:
        """Index the parsed modules (label -> tree, see `parse_package`)."""
        by_module = {module_name(label): definitions(tree) for label, tree in modules.items()}
        everywhere: dict[str, list[Signature]] = defaultdict(list)
        for found in by_module.values():
            for name, signatures in found.items():
                everywhere[name].extend(signatures)
        return cls(by_module, dict(everywhere))

    def callee(self, label: str, imports: Mapping[str, tuple[str, str]], func: ast.expr,
               ) -> tuple[str, list[Signature]]:
        """(name, candidate signatures) of what a call in module `label` calls."""
        if isinstance(func, ast.Name):
            name = func.id
        elif isinstance(func, ast.Attribute):
            name = func.attr
        else:
            return "a callable", []
        own = self.modules.get(module_name(label), {})
        if name in own:
            return name, own[name]
        if isinstance(func, ast.Name) and name in imports:
            module, original = imports[name]
            if module in self.modules:
                return name, self.modules[module].get(original, [])
        return name, self.everywhere.get(name, [])


def _own_nodes(scope: ScopeNode) -> Iterator[ast.AST]:
    """The nodes of a scope, without the bodies of the functions nested in it.

    What a nested function's definition evaluates (decorators, defaults) belongs to this
    scope; so does a class body, which is no scope for the methods defined in it.
    """
    pending: list[ast.AST] = list(ast.iter_child_nodes(scope))
    while pending:
        node = pending.pop()
        yield node
        if isinstance(node, FunctionNode):
            defaults = [*node.args.defaults, *(d for d in node.args.kw_defaults if d)]
            decorators = [] if isinstance(node, ast.Lambda) else node.decorator_list
            pending.extend([*defaults, *decorators])
        elif isinstance(node, ast.ClassDef):
            pending.extend([*node.decorator_list, *node.bases, *node.keywords])
            pending.extend(n for n in node.body if not isinstance(n, FunctionNode))
        else:
            pending.extend(ast.iter_child_nodes(node))


class Scanner:
    """Collects the client uses of one module (see the module docstring for the rules)."""

    def __init__(self, label: str, index: Index) -> None:
        self.label = label
        self.index = index
        self.imports: dict[str, tuple[str, str]] = {}
        self.result = ScanResult()
        self.parents: dict[ast.AST, ast.AST] = {}

    def scan(self, tree: ast.Module) -> ScanResult:
        """Walk the module, scope by scope."""
        self.imports = imported_names(tree)
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                self.parents[child] = node
        self._scope(tree, {})
        return self.result

    # --- scopes and aliases ------------------------------------------------------------------

    def _scope(self, scope: ScopeNode, enclosing: dict[str, str]) -> None:
        aliases = dict(enclosing)
        if not isinstance(scope, ast.Module):
            arguments = scope.args
            for arg in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs):
                aliases.pop(arg.arg, None)  # a parameter shadows an enclosing alias
                if arg.arg in CLIENT_ATTRIBUTES:
                    aliases[arg.arg] = CLIENT_ATTRIBUTES[arg.arg]
        nodes = list(_own_nodes(scope))
        changed = True
        while changed:  # `a = ctx.clients.s3; b = a` needs two rounds
            changed = False
            for node in nodes:
                target, value = self._assignment(node)
                if target is None or value is None or target in aliases:
                    continue
                service = self.service_of(value, aliases)
                if service is not None:
                    aliases[target] = service
                    changed = True
        for node in nodes:
            if isinstance(node, ast.expr):
                self._expression(node, aliases)
            if isinstance(node, FunctionNode):
                self._scope(node, aliases)
            elif isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, FunctionNode):
                        self._scope(item, aliases)

    @staticmethod
    def _assignment(node: ast.AST) -> tuple[str | None, ast.expr | None]:
        """(name, value) of `name = value` / `name: T = value` / `(name := value)`."""
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                return target.id, node.value
        if isinstance(node, ast.AnnAssign | ast.NamedExpr) and isinstance(node.target, ast.Name):
            return node.target.id, node.value
        return None, None

    def service_of(self, node: ast.AST, aliases: Mapping[str, str]) -> str | None:
        """The boto3 service of the client `node` evaluates to, or None if it is none."""
        if isinstance(node, ast.Attribute) and node.attr in CLIENT_ATTRIBUTES:
            return CLIENT_ATTRIBUTES[node.attr]
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "once" and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)):  # clients.once("cognito-idp")
            return CLIENT_ATTRIBUTES.get(node.args[0].value.replace("-", "_"))
        if isinstance(node, ast.Name):
            return aliases.get(node.id)
        return None

    # --- uses --------------------------------------------------------------------------------

    def _where(self, node: ast.AST) -> str:
        return f"{self.label}:{getattr(node, 'lineno', '?')}"

    def _problem(self, node: ast.AST, what: str) -> None:
        self.result.problems.append(f"{self._where(node)}: {what}")

    def _expression(self, node: ast.expr, aliases: Mapping[str, str]) -> None:
        service = self.service_of(node, aliases)
        if service is None:
            return
        if isinstance(node, ast.Name | ast.Attribute) and not isinstance(node.ctx, ast.Load):
            return  # the target of an assignment, not a use
        parent = self.parents[node]  # an expression always has one
        if isinstance(parent, ast.Attribute) and parent.value is node:
            self._method(service, parent)
        elif isinstance(parent, ast.Call | ast.keyword):
            self._handed_over(service, node, parent)
        elif isinstance(parent, ast.Expr):
            return  # made and dropped (built ahead of use): no call on it
        elif self._assignment(parent)[1] is not node and not (
            isinstance(parent, ast.Assign | ast.AnnAssign)
            and all(self.service_of(t, {}) == service for t in self._targets(parent))
        ):  # neither `name = client` (an alias) nor `self.s3 = s3` (a client attribute)
            self._problem(node, f"a {service} client used in a way the scan cannot follow")

    @staticmethod
    def _targets(node: ast.Assign | ast.AnnAssign) -> list[ast.expr]:
        return list(node.targets) if isinstance(node, ast.Assign) else [node.target]

    def _method(self, service: str, attribute: ast.Attribute) -> None:
        name = attribute.attr
        if name in NOT_OPERATIONS:
            return
        if name == "get_paginator":
            call = self.parents.get(attribute)
            if (
                isinstance(call, ast.Call)
                and call.func is attribute
                and len(call.args) == 1
                and isinstance(call.args[0], ast.Constant)
                and isinstance(call.args[0].value, str)
            ):
                self.result.uses.append(Use(service, call.args[0].value, self._where(call)))
            else:
                self._problem(attribute, f"{service}.get_paginator without a literal name")
            return
        if name == "get_waiter":
            self._problem(attribute, f"{service}.get_waiter: map the waiter's operation here")
            return
        self.result.uses.append(Use(service, name, self._where(attribute)))

    def _handed_over(self, service: str, node: ast.expr, parent: ast.Call | ast.keyword) -> None:
        """A client passed to a function: fine if it lands in a parameter named after it."""
        if isinstance(parent, ast.keyword):
            call = self.parents.get(parent)
            keyword, position = parent.arg, None
        else:
            call = parent
            if node not in call.args:
                self._problem(node, f"a {service} client called as a function")
                return
            keyword, position = None, call.args.index(node)
        assert isinstance(call, ast.Call)
        name, candidates = self.index.callee(self.label, self.imports, call.func)
        if not candidates:
            self._problem(node, f"a {service} client handed to {name}(), which the scanned "
                          "code does not define")
            return
        for signature in candidates:
            if keyword is not None:
                param = keyword if keyword in signature.keyword else None
            else:
                assert position is not None
                positional = signature.positional
                param = positional[position] if position < len(positional) else None
            if param is None or CLIENT_ATTRIBUTES.get(param) != service:
                self._problem(
                    node,
                    f"a {service} client handed to {name}() as {param or 'an unnamed argument'}:"
                    f" name that parameter `{service.replace('-', '_')}` so the scan follows it",
                )
                return


def parse_package(root: Path) -> dict[str, ast.Module]:
    """Every module under `root`, parsed, by its path relative to root's parent."""
    return {
        str(path.relative_to(root.parent)): ast.parse(path.read_text(), str(path))
        for path in sorted(root.rglob("*.py"))
    }


def scan_package(root: Path) -> ScanResult:
    """The client uses (and unfollowable places) of every module under `root`."""
    modules = parse_package(root)
    index = Index.of(modules)
    result = ScanResult()
    for label, tree in modules.items():
        found = Scanner(label, index).scan(tree)
        result.uses.extend(found.uses)
        result.problems.extend(found.problems)
    return result


@cache
def method_to_operation(service: str) -> Mapping[str, str]:
    """botocore's `method -> OperationName` table of one service (no credentials needed)."""
    client = boto3.session.Session().client(service, region_name="us-east-1")
    return dict(client.meta.method_to_api_mapping)


def iam_actions(use: Use) -> tuple[str, ...]:
    """The IAM action(s) one use needs; KeyError for an unknown method or service."""
    operation = method_to_operation(use.service)[use.method]
    override = ACTION_OVERRIDES.get((use.service, operation))
    return override or (f"{IAM_PREFIX[use.service]}:{operation}",)


def load_policy(path: Path = POLICY) -> dict[str, Any]:
    """The policy document."""
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def granted(policy: Mapping[str, Any]) -> list[str]:
    """Every Action pattern of the policy's Allow statements."""
    return [
        pattern
        for statement in _as_list(policy.get("Statement", []))
        if statement.get("Effect") == "Allow"
        for pattern in _as_list(statement.get("Action", []))
    ]


def allows(patterns: Iterable[str], action: str) -> bool:
    """Whether an action matches one of the patterns (IAM actions ignore letter case)."""
    return any(fnmatch.fnmatchcase(action.lower(), p.lower()) for p in patterns)


def missing_actions(uses: Iterable[Use], policy: Mapping[str, Any]) -> dict[str, list[str]]:
    """Needed action -> where it is needed, for every action the policy does not allow."""
    patterns = granted(policy)
    missing: dict[str, list[str]] = defaultdict(list)
    for use in uses:
        for action in iam_actions(use):
            if not allows(patterns, action):
                missing[action].append(use.where)
    return dict(missing)


@pytest.fixture(scope="module")
def scanned() -> ScanResult:
    """The scan of the real package."""
    return scan_package(PACKAGE)


@pytest.fixture(scope="module")
def policy() -> dict[str, Any]:
    """The real policy."""
    return load_policy()


def test_policy_is_a_plain_document(policy: dict[str, Any]) -> None:
    """Valid JSON, the current language version, Sid'ed Allow and Deny statements."""
    assert policy["Version"] == "2012-10-17"
    statements = policy["Statement"]
    assert isinstance(statements, list)
    assert statements
    sids = [s.get("Sid") for s in statements]
    assert all(isinstance(sid, str) and sid.isalnum() for sid in sids), sids
    assert len(set(sids)) == len(sids), "duplicate Sid"
    for statement in statements:
        # Only Action/Resource (no NotAction): what `allows` evaluates is what IAM evaluates.
        assert statement["Effect"] in ("Allow", "Deny"), statement["Sid"]
        assert set(statement) <= {"Sid", "Effect", "Action", "Resource", "Condition"}
        assert statement["Action"] and statement["Resource"], statement["Sid"]
        for action in _as_list(statement["Action"]):
            assert action.count(":") == 1, action


def test_policy_fits_an_inline_role_policy(policy: dict[str, Any]) -> None:
    """IAM counts a policy without whitespace; an inline role policy holds 10,240 characters.

    (A managed policy holds only 6,144, which this scoped policy exceeds: attach it inline.)
    """
    assert len(json.dumps(policy, separators=(",", ":"))) <= INLINE_POLICY_LIMIT


def test_production_overlay_points_at_the_policy() -> None:
    """Whoever deploys the operator finds the policy from the overlay they apply."""
    assert POLICY.name in PRODUCTION_KUSTOMIZATION.read_text()


def test_scan_follows_every_client(scanned: ScanResult) -> None:
    """No client escapes the scan (returned, stored, handed to an unnamed parameter)."""
    assert not scanned.problems, "\n".join(scanned.problems)


def test_scan_finds_the_known_calls(scanned: ScanResult) -> None:
    """A sanity check of the scanner on calls of every shape the package uses."""
    found = {(u.service, u.method) for u in scanned.uses}
    assert {
        ("ecs", "update_service"),  # clients.ecs.update_service(...)
        ("ecs", "list_task_definitions"),  # ctx.clients.ecs.get_paginator("...")
        ("cognito-idp", "list_user_pool_clients"),  # idp = ctx.clients.cognito_idp
        ("iam", "delete_role"),  # _ignore_missing(iam.delete_role, ...)
        ("s3", "upload_part"),  # self.s3.upload_part(...) in S3Writer
        ("s3", "list_objects_v2"),  # s3.get_paginator(...) on a parameter
        ("application-autoscaling", "put_scaling_policy"),  # client = ...
        ("resourcegroupstaggingapi", "get_resources"),
        ("sts", "get_caller_identity"),
    } <= found


def test_every_use_is_a_boto3_operation(scanned: ScanResult) -> None:
    """Each method found exists on its client, so the scan mistook nothing for a client."""
    unknown = [
        f"{u.where}: {u.service}.{u.method}"
        for u in scanned.uses
        if u.service not in IAM_PREFIX or u.method not in method_to_operation(u.service)
    ]
    assert not unknown, (
        "not an operation in botocore's model (a boto3 helper such as upload_fileobj needs "
        "its operations mapped by hand), or a service without IAM_PREFIX:\n" + "\n".join(unknown)
    )


def test_policy_allows_every_call(scanned: ScanResult, policy: dict[str, Any]) -> None:
    """Every AWS operation the code can make is allowed by the policy."""
    missing = missing_actions(scanned.uses, policy)
    assert not missing, "the policy lacks:\n" + "\n".join(
        f"{action} (used at {', '.join(where)})" for action, where in sorted(missing.items())
    )


def test_policy_allows_the_implicit_permissions(policy: dict[str, Any]) -> None:
    """Permissions that arguments, not calls, require are granted too."""
    patterns = granted(policy)
    missing = [f"{a}: {why}" for a, why in IMPLICIT.items() if not allows(patterns, a)]
    assert not missing, "\n".join(missing)


def test_no_unconditional_deny_blocks_a_needed_call(
    scanned: ScanResult, policy: dict[str, Any]
) -> None:
    """The Deny statements guard the boundary; none may take away what the code needs.

    A Deny with a condition (no permissions boundary, say) denies only the misuse, so only
    the unconditional ones are checked against the needed actions.
    """
    needed = {a for use in scanned.uses for a in iam_actions(use)} | set(IMPLICIT)
    denied = [
        pattern
        for statement in policy["Statement"]
        if statement["Effect"] == "Deny" and "Condition" not in statement
        for pattern in _as_list(statement["Action"])
    ]
    assert denied, "the policy denies removing permissions boundaries"
    assert not [a for a in sorted(needed) if allows(denied, a)]


def test_policy_grants_nothing_unused(scanned: ScanResult, policy: dict[str, Any]) -> None:
    """Each granted action (or wildcard) is one the code needs: no stale permissions."""
    needed = {a for use in scanned.uses for a in iam_actions(use)} | set(IMPLICIT)
    unused = [p for p in granted(policy) if not any(allows([p], a) for a in needed)]
    assert not unused, f"granted but never needed: {unused}"


FAKE_CALL = """
def drop_everything(ctx):
    ctx.clients.ecs.delete_cluster(cluster=ctx.settings.cluster_name)
"""


def test_a_new_call_without_policy_fails(
    tmp_path: Path, scanned: ScanResult, policy: dict[str, Any]
) -> None:
    """The check itself: a call added to a copy of the package is found and refused."""
    package = tmp_path / "wpenv"
    for path in PACKAGE.rglob("*.py"):
        copy = package / path.relative_to(PACKAGE)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(path.read_text())
    (package / "reconcilers" / "fake.py").write_text(FAKE_CALL)
    before = missing_actions(scanned.uses, policy)
    after = missing_actions(scan_package(package).uses, policy)
    assert {k: v for k, v in after.items() if before.get(k) != v} == {
        "ecs:DeleteCluster": ["wpenv/reconcilers/fake.py:3"]
    }


SHAPES = """
def aliases(ctx):
    ecs = ctx.clients.ecs
    client = ecs
    client.create_cluster()
    def nested():
        client.delete_cluster()
    return lambda: ecs.list_clusters()

def parameter(s3, bucket):
    s3.get_paginator("list_object_versions").paginate(Bucket=bucket)
    upload(s3, Bucket=bucket)

def upload(s3, **kwargs):
    retry(s3.put_object, **kwargs)

class Writer:
    def __init__(self, s3):
        self.s3 = s3

    def close(self):
        self.s3.complete_multipart_upload()

def walrus(clients):
    if (sm := clients.secretsmanager) is not None:
        sm.get_secret_value(SecretId="x")
"""


def test_scan_follows_aliases_parameters_and_attributes() -> None:
    """Each way the package reaches a client, on a small module of every shape."""
    tree = ast.parse(SHAPES)
    result = Scanner("shapes.py", Index.of({"shapes.py": tree})).scan(tree)
    assert not result.problems
    assert {(u.service, u.method) for u in result.uses} == {
        ("ecs", "create_cluster"),
        ("ecs", "delete_cluster"),
        ("ecs", "list_clusters"),
        ("s3", "list_object_versions"),
        ("s3", "put_object"),
        ("s3", "complete_multipart_upload"),
        ("secretsmanager", "get_secret_value"),
    }


@pytest.mark.parametrize(
    "source",
    [
        "def f(ctx):\n    return ctx.clients.ecs\n",
        "def f(ctx):\n    clients = [ctx.clients.ecs]\n",
        "def f(ctx):\n    g(ctx.clients.ecs)\ndef g(client):\n    client.delete_cluster()\n",
        "def f(ctx):\n    ctx.clients.ecs.get_waiter('services_stable')\n",
        "def f(ctx, op):\n    ctx.clients.ecs.get_paginator(op)\n",
    ],
)
def test_unfollowable_clients_are_reported(source: str) -> None:
    """Shapes the scan cannot follow fail loudly instead of hiding calls."""
    tree = ast.parse(source)
    result = Scanner("fake.py", Index.of({"fake.py": tree})).scan(tree)
    assert result.problems
