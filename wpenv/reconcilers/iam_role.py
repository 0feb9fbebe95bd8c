"""What the tenant's two IAM roles share: one role, one inline policy, owned exactly.

ECS takes two roles per task definition and the tenant gets both: the task role (what the
WordPress application may do, wpenv.reconcilers.task_role) and the execution role (what
ECS itself does to start a task: pull the image, read the secrets, write the logs,
wpenv.reconcilers.execution_role). Keeping them apart keeps each policy small enough to
audit and the application away from what only ECS needs. Both are the same shape, so
the work is written once here: a kind declares its name, its id, the name suffix that
tells its roles apart in the account, and its inline policy.

The trust policy (ECS tasks only) and the one inline policy are owned exactly; any other
inline policy found on the role is removed by update. Every role carries the permissions
boundary the settings name (`role_permissions_boundary_arn`, the tenant boundary policy):
the operator's own IAM policy lets it create a role, or change a role's policies, only with
that boundary on it, so a role whose boundary is missing or another is set back with
PutRolePermissionsBoundary before anything else is written to it. The tags go first of all:
the operator's policy allows writes to a role only while it carries the managed-by tag.
IAM role names are unique per account, so a role is found by its deterministic name, and
create adopts on `EntityAlreadyExists`.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from botocore.exceptions import ClientError

from wpenv import aws
from wpenv.errors import TransientError
from wpenv.plan import TAG_MANAGED_BY, tag_dict, tag_diff, tag_list
from wpenv.reconcilers.base import Context, Found, Observation, Resource
from wpenv.settings import Settings

__all__ = [
    "ACCESS_DENIED",
    "DUPLICATE",
    "NOT_FOUND",
    "POLICY_NAME",
    "VERSION",
    "Role",
    "TenantRole",
    "boundary_differs",
    "canonical",
    "desired_trust_policy",
    "parse_document",
    "role_name",
    "same_document",
]

log = logging.getLogger(__name__)

POLICY_NAME = "wpenv-tenant"
NOT_FOUND = "NoSuchEntity"
DUPLICATE = "EntityAlreadyExists"
# While listing every role of the account: one whose tags we may not read is not ours.
ACCESS_DENIED = frozenset({"AccessDenied", "AccessDeniedException"})
VERSION = "2012-10-17"


def allow(
    sid: str, action: str | list[str], resource: str | list[str],
    condition: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One Allow statement of a tenant role's inline policy."""
    statement: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": action,
                                 "Resource": resource}
    if condition:
        statement["Condition"] = dict(condition)
    return statement


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    """An inline policy document of `statements`."""
    return {"Version": VERSION, "Statement": list(statements)}
STALE = "role {name}: {what} differ(s) from the plan"
# The shared cache's listing of every role: GetAccountAuthorizationDetails with the Role
# filter answers, per role, what GetRole, ListRolePolicies and GetRolePolicy answer one by
# one (trust policy, boundary, tags, inline policies with their documents).
LISTED = "iam:GetAccountAuthorizationDetails"


def listed_roles(clients: Any) -> dict[str, Role]:
    """Role name -> the role as observe finds it, for every role of the account."""
    pages = clients.iam.get_paginator("get_account_authorization_details").paginate(
        Filter=["Role"]
    )
    roles: dict[str, Role] = {}
    for page in pages:
        for detail in page.get("RoleDetailList", []):
            inline = {str(p["PolicyName"]): p.get("PolicyDocument")
                      for p in detail.get("RolePolicyList") or []}
            role = {k: v for k, v in dict(detail).items() if k != "RolePolicyList"}
            roles[str(detail["RoleName"])] = Role(role, tuple(inline), inline.get(POLICY_NAME))
    return roles


def desired_trust_policy() -> dict[str, Any]:
    """Only ECS tasks may assume the role (ECS assumes both the task and the execution role)."""
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def parse_document(raw: Any) -> Any:
    """A policy document as data: AWS returns it URL-encoded JSON, boto3 often decoded."""
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return json.loads(urllib.parse.unquote(raw))


def canonical(document: Any) -> Any:
    """A comparable form: one-element lists as scalars, string lists sorted."""
    if isinstance(document, dict):
        return {k: canonical(v) for k, v in document.items()}
    if isinstance(document, list):
        items = [canonical(v) for v in document]
        if len(items) == 1:
            return items[0]
        if all(isinstance(v, str) for v in items):
            return sorted(items)
        return items
    return document


def same_document(observed: Any, wanted: dict[str, Any]) -> bool:
    """Whether an observed (raw) policy document means the same as the wanted one."""
    return bool(canonical(parse_document(observed)) == canonical(wanted))


def boundary_differs(settings: Settings, role: Mapping[str, Any]) -> bool:
    """Whether the role lacks the boundary the settings name (none named: never)."""
    wanted = settings.role_permissions_boundary_arn
    have = (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
    return bool(wanted) and have != wanted


def _ignore_missing(call: Any, **kwargs: Any) -> Any:
    """`call(**kwargs)`, or None when IAM answers NoSuchEntity (already gone)."""
    try:
        return call(**kwargs)
    except ClientError as exc:
        if aws.error_code(exc) == NOT_FOUND:
            return None
        raise


def _names(pages: Iterator[dict[str, Any]], key: str, field: str | None = None) -> list[str]:
    """One list of names (or `field`s of entries) out of the pages of an IAM listing."""
    return [str(e if field is None else e[field]) for page in pages for e in page.get(key, [])]


@dataclass(frozen=True)
class Role:
    """A role as observe or the orphan scan found it.

    `role` is IAM's Role (GetRole, or a ListRoles entry); `inline` the names of its inline
    policies and `document` our inline policy as stored, when observe read them (None:
    not read, e.g. by the scan, which needs the name only).
    """

    role: dict[str, Any]
    inline: tuple[str, ...] | None = None
    document: Any = None

    @property
    def name(self) -> str:
        """The role's name."""
        return str(self.role["RoleName"])

    @property
    def arn(self) -> str:
        """The role's ARN, as recorded in the status."""
        return str(self.role["Arn"])


def role_name(arn: str) -> str:
    """`wpenv-acme-task` of `arn:<partition>:iam::1:role/wpenv-acme-task` (paths included)."""
    return arn.rpartition("/")[2]


class TenantRole(Resource, group="Permissions", gone={NOT_FOUND}, retainable=True):
    """One IAM role of a tenant with one inline policy (condition group "Permissions").

    A kind declares `ids` (its ARN's status key), `suffix` (how its role names end, so two
    kinds never claim each other's roles in the orphan scan), `description`, `document`
    (the inline policy's builder: context, account, partition; it raises TransientError
    while something it names is missing) and implements `role_name`.
    """

    suffix: ClassVar[str]
    description: ClassVar[str]
    document: ClassVar[staticmethod[[Context, str, str], dict[str, Any]]]

    def __init__(self) -> None:
        """The account id and partition are read once per operator run (STS)."""
        self._caller: tuple[str, str] | None = None

    # -- what a kind declares --------------------------------------------------------
    def role_name(self, ctx: Context) -> str:
        """The role's deterministic name."""
        raise NotImplementedError

    # -- shared ------------------------------------------------------------------------
    def _account(self, ctx: Context) -> tuple[str, str]:
        """(account id, partition) of the operator's credentials, cached."""
        if self._caller is None:
            identity = ctx.clients.sts.get_caller_identity()
            # arn:<partition>:sts::<account>:assumed-role/...: the partition is never assumed.
            self._caller = (str(identity["Account"]), str(identity["Arn"]).split(":")[1])
        return self._caller

    def _policy(self, ctx: Context) -> dict[str, Any]:
        account, partition = self._account(ctx)
        return type(self).document(ctx, account, partition)

    def find_by_name(self, ctx: Context) -> Role | None:
        """The role of the deterministic name, with its inline policy names and ours."""
        name = self.role_name(ctx)
        found: Role | None = self.cached(
            ctx, LISTED, "", name,
            bulk=lambda: listed_roles(ctx.clients), direct=lambda: self._get(ctx, name),
        )
        return found

    def _get(self, ctx: Context, name: str) -> Role | None:
        """GetRole, ListRolePolicies and (when ours is there) GetRolePolicy of one role."""
        iam = ctx.clients.iam
        try:
            role = iam.get_role(RoleName=name)["Role"]
            inline = self._inline_names(ctx.clients, name)
        except ClientError as exc:
            if self.is_gone(exc):
                return None
            raise
        document = None
        if POLICY_NAME in inline:
            answer = _ignore_missing(iam.get_role_policy, RoleName=name, PolicyName=POLICY_NAME)
            document = None if answer is None else answer["PolicyDocument"]
        return Role(dict(role), tuple(inline), document)

    def inspect(self, ctx: Context, found: Role) -> Observation:
        """Stale when trust, inline policies or our tags differ."""
        stale: list[str] = []
        if not same_document(found.role.get("AssumeRolePolicyDocument"), desired_trust_policy()):
            stale.append("trust policy")
        try:
            policy = self._policy(ctx)
        except TransientError as exc:
            stale.append(f"inline policy ({exc})")
        else:
            if found.document is None or not same_document(found.document, policy):
                stale.append("inline policy")
        if set(found.inline or ()) - {POLICY_NAME}:
            stale.append("extra inline policies")
        if boundary_differs(ctx.settings, found.role):
            stale.append("permissions boundary")
        if tag_diff(ctx.tags, found.role):
            stale.append("tags")
        return Observation(
            exists=True,
            up_to_date=not stale,
            ids={self.ids[0]: found.arn},
            detail=STALE.format(name=found.name, what=", ".join(stale)) if stale else "",
            found=found,
        )

    def create(self, ctx: Context, observed: Observation) -> None:
        """Create (or adopt) the role, record its ARN, then put the inline policy."""
        policy = self._policy(ctx)  # fails first, before anything exists, while waiting
        found: Role | None = observed.found
        if found is None:
            found = self._create_role(ctx)
        ctx.remember({self.ids[0]: found.arn})
        self._converge(ctx, found, policy)

    def _create_role(self, ctx: Context) -> Role:
        """CreateRole; on EntityAlreadyExists (a pass we do not remember) the existing one."""
        name = self.role_name(ctx)
        trust = desired_trust_policy()
        boundary = ctx.settings.role_permissions_boundary_arn
        try:
            role = ctx.clients.iam.create_role(
                RoleName=name,
                AssumeRolePolicyDocument=json.dumps(trust),
                Description=self.description.format(tenant=ctx.names.tenant),
                Tags=ctx.tag_list,
                **({"PermissionsBoundary": boundary} if boundary else {}),
            )["Role"]
        except ClientError as exc:
            if aws.error_code(exc) != DUPLICATE:
                raise
            log.info("adopting role %s", name)
            adopted = self.find_by_name(ctx)
            if adopted is None:
                raise
            return adopted
        log.info("created role %s", name)
        # Just made with our trust policy, tags and boundary, and without inline policies.
        made = {**role, "AssumeRolePolicyDocument": trust, "Tags": ctx.tag_list}
        if boundary:
            made["PermissionsBoundary"] = {"PermissionsBoundaryArn": boundary}
        return Role(made, ())

    def update(self, ctx: Context, observed: Observation) -> None:
        """Restore trust, inline policy and tags; drop inline policies we did not write."""
        policy = self._policy(ctx)
        ctx.remember({self.ids[0]: observed.found.arn})
        self._converge(ctx, observed.found, policy)

    def _converge(self, ctx: Context, found: Role, policy: dict[str, Any]) -> None:
        """Write only what differs: tags, then the boundary, then trust and policies.

        That order is what the operator's IAM policy needs: writes to a role need our
        managed-by tag on it, and its inline policies may change only under our boundary.
        """
        iam = ctx.clients.iam
        name = found.name
        tags = tag_diff(ctx.tags, found.role)
        if tags:
            iam.tag_role(RoleName=name, Tags=tag_list(tags))
        if boundary_differs(ctx.settings, found.role):
            iam.put_role_permissions_boundary(
                RoleName=name, PermissionsBoundary=ctx.settings.role_permissions_boundary_arn
            )
            log.info("set the permissions boundary of role %s", name)
        trust = desired_trust_policy()
        if not same_document(found.role.get("AssumeRolePolicyDocument"), trust):
            iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
        if found.document is None or not same_document(found.document, policy):
            iam.put_role_policy(
                RoleName=name, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(policy)
            )
        inline = found.inline
        if inline is None:
            inline = tuple(self._inline_names(ctx.clients, name))
        for other in set(inline) - {POLICY_NAME}:
            _ignore_missing(iam.delete_role_policy, RoleName=name, PolicyName=other)
            log.info("removed inline policy %s from role %s", other, name)

    @staticmethod
    def _inline_names(clients: Any, name: str) -> list[str]:
        pages = clients.iam.get_paginator("list_role_policies").paginate(RoleName=name)
        return _names(pages, "PolicyNames")

    def remove(self, clients: Any, settings: Settings, found: Role) -> None:
        """Inline policies, attached policies and instance profiles off, then the role.

        We attach none and make no instance profile, but one added by hand would block
        DeleteRole. NoSuchEntity from a listing means the role is gone (success).
        """
        iam = clients.iam
        name = found.name
        for policy in self._inline_names(clients, name):
            _ignore_missing(iam.delete_role_policy, RoleName=name, PolicyName=policy)
        pages = iam.get_paginator("list_attached_role_policies").paginate(RoleName=name)
        for arn in _names(pages, "AttachedPolicies", "PolicyArn"):
            _ignore_missing(iam.detach_role_policy, RoleName=name, PolicyArn=arn)
        pages = iam.get_paginator("list_instance_profiles_for_role").paginate(RoleName=name)
        for profile in _names(pages, "InstanceProfiles", "InstanceProfileName"):
            _ignore_missing(
                iam.remove_role_from_instance_profile, InstanceProfileName=profile, RoleName=name
            )
        iam.delete_role(RoleName=name)
        log.info("deleted role %s", name)

    def tag(self, ctx: Context, recorded: str, tags: Mapping[str, str]) -> None:
        """TagRole on the recorded role (the status records its ARN)."""
        ctx.clients.iam.tag_role(RoleName=role_name(recorded), Tags=tag_list(tags))

    def managed(self, clients: Any, settings: Settings) -> Iterator[Found]:
        """This kind's roles (by name suffix) with our managed-by tag (ListRoles has no tags).

        A role whose tags we may not read is skipped: the operator's IAM policy is usually
        scoped to its own `wpenv-*` roles, and a role outside that scope is not one it made.
        """
        pages = clients.iam.get_paginator("list_roles").paginate()
        for role in [dict(r) for page in pages for r in page.get("Roles", [])]:
            if not str(role["RoleName"]).endswith(self.suffix):
                continue  # the other role kind's, or not ours at all
            try:
                found = self._read(clients, Role(role))
            except ClientError as exc:
                if aws.error_code(exc) not in ACCESS_DENIED:
                    raise
                log.debug("orphan scan: may not read the tags of role %s; not ours",
                          role["RoleName"])
                continue
            if found is not None and found.tags.get(TAG_MANAGED_BY) == settings.operator_name:
                yield found

    def _read(self, clients: Any, role: Role) -> Found | None:
        """The role with its tags (ListRoleTags); None when it is gone."""
        try:
            pages = clients.iam.get_paginator("list_role_tags").paginate(RoleName=role.name)
            tags = tag_dict(tag for page in pages for tag in page.get("Tags", []))
        except ClientError as exc:
            if self.is_gone(exc):
                return None
            raise
        return Found(role.name, replace(role, role={**role.role, "Tags": tag_list(tags)}),
                     tags, {"arn": role.arn})

    def refresh(self, clients: Any, settings: Settings, item: Found) -> Found | None:
        """The role's current tags; None when it is gone."""
        found: Role = item.found
        return self._read(clients, found)
