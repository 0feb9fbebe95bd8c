"""The tenant's IAM role: what its WordPress tasks (and ECS on their behalf) may do.

One role serves as both task role and task execution role, so the whole of a tenant's
permissions is one small document to audit: mount the shared file system only through the
tenant's own access point, read only the tenant's secrets, write only the tenant's logs.
The inline policy and the trust policy are owned exactly; any other inline policy found on
the role is removed by update. IAM role names are unique per account, so the role is found
by its deterministic name.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from typing import Any

from botocore.exceptions import ClientError

from wpenv import aws
from wpenv.reconcilers.base import MISSING, Context, Observation, TransientError, tag_diff

log = logging.getLogger(__name__)

POLICY_NAME = "wpenv-tenant"
NOT_FOUND = "NoSuchEntity"
DUPLICATE = "EntityAlreadyExists"
WAITING = "WaitingForAccessPoint"
VERSION = "2012-10-17"

WAITING_FOR_ACCESS_POINT = (
    "the task role of {tenant} names its access point, which is not recorded yet"
)
ROLE_DESCRIPTION = "wpenv tenant {tenant}: ECS task and task execution role"
STALE = "role {name}: {what} differ(s) from the plan"


def desired_trust_policy() -> dict[str, Any]:
    """Only ECS tasks may assume the role (as task role and as execution role)."""
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


def desired_policy(ctx: Context, account: str, partition: str = "aws") -> dict[str, Any]:
    """The inline policy: this tenant's access point, secrets and log group, nothing more.

    Raises TransientError until the access point's ARN is recorded (it is created first).
    """
    access_point_arn = ctx.ids.get("accessPointArn")
    if not access_point_arn:
        raise TransientError(WAITING, WAITING_FOR_ACCESS_POINT.format(tenant=ctx.names.tenant))
    region = ctx.settings.region
    file_system = f"file-system/{ctx.settings.file_system_id}"
    secrets = f"secret:wpenv/{ctx.names.tenant}/*"
    log_group = f"log-group:{ctx.names.log_group}:*"
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "MountOwnAccessPoint",
                "Effect": "Allow",
                "Action": ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"],
                "Resource": f"arn:{partition}:elasticfilesystem:{region}:{account}:{file_system}",
                "Condition": {
                    "StringEquals": {"elasticfilesystem:AccessPointArn": access_point_arn}
                },
            },
            {
                "Sid": "ReadOwnSecrets",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": f"arn:{partition}:secretsmanager:{region}:{account}:{secrets}",
            },
            {
                "Sid": "WriteOwnLogs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": f"arn:{partition}:logs:{region}:{account}:{log_group}",
            },
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


def _ignore_missing(call: Any, **kwargs: Any) -> Any:
    """`call(**kwargs)`, or None when IAM answers NoSuchEntity (already gone)."""
    try:
        return call(**kwargs)
    except ClientError as exc:
        if aws.is_not_found(exc, NOT_FOUND):
            return None
        raise


class TaskRole:
    """IAM task (and execution) role of one tenant (condition group "Permissions")."""

    kind = "TaskRole"
    group = "Permissions"

    def __init__(self) -> None:
        """The account id and partition are read once per operator run (STS)."""
        self._caller: tuple[str, str] | None = None

    def _account(self, ctx: Context) -> tuple[str, str]:
        """(account id, partition) of the operator's credentials, cached."""
        if self._caller is None:
            identity = ctx.clients.sts.get_caller_identity()
            arn = str(identity.get("Arn", "arn:aws:"))
            self._caller = (str(identity["Account"]), arn.split(":")[1] or "aws")
        return self._caller

    def _policy(self, ctx: Context) -> dict[str, Any]:
        account, partition = self._account(ctx)
        return desired_policy(ctx, account, partition)

    def observe(self, ctx: Context) -> Observation:
        """Find the role; stale when trust, inline policies or our tags differ."""
        iam = ctx.clients.iam
        name = ctx.names.task_role
        try:
            role = iam.get_role(RoleName=name)["Role"]
            names = self._inline_names(ctx)
        except ClientError as exc:
            if aws.is_not_found(exc, NOT_FOUND):
                return MISSING
            raise
        inline = None
        if POLICY_NAME in names:
            answer = _ignore_missing(iam.get_role_policy, RoleName=name, PolicyName=POLICY_NAME)
            inline = None if answer is None else answer["PolicyDocument"]
        stale: list[str] = []
        if not same_document(role.get("AssumeRolePolicyDocument"), desired_trust_policy()):
            stale.append("trust policy")
        if not ctx.ids.get("accessPointArn"):
            stale.append("inline policy (access point not recorded)")
        elif inline is None or not same_document(inline, self._policy(ctx)):
            stale.append("inline policy")
        if set(names) - {POLICY_NAME}:
            stale.append("extra inline policies")
        if self._missing_tags(ctx, role):
            stale.append("tags")
        return Observation(
            exists=True,
            up_to_date=not stale,
            ids={"taskRoleArn": str(role["Arn"])},
            detail=STALE.format(name=name, what=", ".join(stale)) if stale else "",
            facts={"roleName": name},
        )

    def create(self, ctx: Context) -> None:
        """Create (or adopt) the role, record its ARN, then put the inline policy."""
        policy = self._policy(ctx)  # fails first, before anything exists, if no access point
        iam = ctx.clients.iam
        name = ctx.names.task_role
        try:
            role = iam.create_role(
                RoleName=name,
                AssumeRolePolicyDocument=json.dumps(desired_trust_policy()),
                Description=ROLE_DESCRIPTION.format(tenant=ctx.names.tenant),
                Tags=ctx.tag_list,
            )["Role"]
            log.info("created role %s", name)
        except ClientError as exc:
            if aws.error_code(exc) != DUPLICATE:
                raise
            role = iam.get_role(RoleName=name)["Role"]
            log.info("adopting role %s", name)
        ctx.remember({"taskRoleArn": str(role["Arn"])})
        self._converge(ctx, role, policy)

    def update(self, ctx: Context, observed: Observation) -> None:
        """Restore trust, inline policy and tags; drop inline policies we did not write."""
        policy = self._policy(ctx)
        role = ctx.clients.iam.get_role(RoleName=ctx.names.task_role)["Role"]
        ctx.remember({"taskRoleArn": str(role["Arn"])})
        self._converge(ctx, role, policy)

    def _converge(self, ctx: Context, role: dict[str, Any], policy: dict[str, Any]) -> None:
        iam = ctx.clients.iam
        name = ctx.names.task_role
        trust = desired_trust_policy()
        if not same_document(role.get("AssumeRolePolicyDocument"), trust):
            iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
        # Put unconditionally: cheap, idempotent, and the only way to be sure.
        iam.put_role_policy(
            RoleName=name, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(policy)
        )
        for other in set(self._inline_names(ctx)) - {POLICY_NAME}:
            _ignore_missing(iam.delete_role_policy, RoleName=name, PolicyName=other)
            log.info("removed inline policy %s from role %s", other, name)
        tags = self._missing_tags(ctx, role)
        if tags:
            iam.tag_role(RoleName=name, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])

    @staticmethod
    def _inline_names(ctx: Context) -> list[str]:
        paginator = ctx.clients.iam.get_paginator("list_role_policies")
        pages = paginator.paginate(RoleName=ctx.names.task_role)
        return [str(n) for page in pages for n in page.get("PolicyNames", [])]

    @staticmethod
    def _missing_tags(ctx: Context, role: dict[str, Any]) -> dict[str, str]:
        return tag_diff(ctx.tags, role)

    def delete(self, ctx: Context) -> None:
        """Remove inline (and any attached) policies, then the role; gone is success."""
        iam = ctx.clients.iam
        name = ctx.names.task_role
        try:
            names = self._inline_names(ctx)
        except ClientError as exc:
            if aws.is_not_found(exc, NOT_FOUND):
                return
            raise
        for policy_name in names:
            _ignore_missing(iam.delete_role_policy, RoleName=name, PolicyName=policy_name)
        paginator = iam.get_paginator("list_attached_role_policies")
        try:
            attached = [
                p["PolicyArn"]
                for page in paginator.paginate(RoleName=name)
                for p in page.get("AttachedPolicies", [])
            ]
        except ClientError as exc:
            if aws.is_not_found(exc, NOT_FOUND):
                return
            raise
        for arn in attached:  # we attach none, but one attached by hand would block the delete
            _ignore_missing(iam.detach_role_policy, RoleName=name, PolicyArn=arn)
        if _ignore_missing(iam.delete_role, RoleName=name) is not None:
            log.info("deleted role %s", name)
