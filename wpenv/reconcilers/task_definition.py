"""The tenant's ECS task definition: one WordPress container on Fargate.

A task definition cannot be changed, only superseded: a new spec (image, cpu, memory) means
a new revision of the tenant's family, and the service follows the newest revision. The
database credentials never appear in it: the container's `secrets` name the tenant's
Secrets Manager secret by ARN and JSON key, and ECS injects the values when a task starts.
Files live on EFS through the tenant's access point, mounted with IAM authorization and
TLS in transit, so the task role (and nothing else) decides who may mount it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from wpenv import aws, sso
from wpenv.plan import url_for
from wpenv.reconcilers import identity
from wpenv.reconcilers.base import MISSING, Context, Observation, TransientError

log = logging.getLogger(__name__)

WAITING = "WaitingForDependencies"
WAITING_FOR = "the task definition needs {missing} recorded first"
STALE = "revision {revision} differs from the spec in {fields}"

# The ids the task definition names; each is recorded by another resource.
REQUIRED_IDS = ("taskRoleArn", "dbSecretArn", "accessPointId")
VOLUME = "wp-content"
CONTENT_PATH = "/var/www/html/wp-content"
LOG_PREFIX = "wordpress"
HEALTH_COMMAND = "curl -fsS http://localhost/wp-login.php >/dev/null || exit 1"
# Container variable -> JSON key of the tenant's DB secret.
SECRET_KEYS = (
    ("WORDPRESS_DB_HOST", "host"),
    ("WORDPRESS_DB_USER", "username"),
    ("WORDPRESS_DB_PASSWORD", "password"),
    ("WORDPRESS_DB_NAME", "dbname"),
)
# The fields of a revision we set; everything else is ECS's (or moto's) default.
COMPARED = (
    "family",
    "requiresCompatibilities",
    "networkMode",
    "cpu",
    "memory",
    "taskRoleArn",
    "executionRoleArn",
    "containerDefinitions",
    "volumes",
)
DEREGISTER_BATCH = 10  # DeleteTaskDefinitions takes at most ten references
_ARN_TAIL = re.compile(r"task-definition/(?P<family>[^:/]+):(?P<revision>\d+)$")


def _require_ids(ctx: Context) -> None:
    # With single sign-on the container also names the Cognito pieces and the client secret.
    required = REQUIRED_IDS + (identity.IDENTITY_IDS if identity.enabled(ctx) else ())
    missing = [key for key in required if not ctx.ids.get(key)]
    if missing:
        raise TransientError(WAITING, WAITING_FOR.format(missing=", ".join(missing)))


def secret_ref(secret_arn: str, key: str) -> str:
    """`valueFrom` for one JSON key of a secret: `<arn>:<key>::` (current version)."""
    return f"{secret_arn}:{key}::"


def sso_container_settings(
    ctx: Context, tenant_url: str | None
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(environment, secrets) entries for the SSO plugin; both empty without identity.

    The client secret is a `secrets` reference to its Secrets Manager key, never a value.
    `tenant_url` is where sign-out lands (None: the URL without a listener port).
    """
    if not identity.enabled(ctx):
        return [], []
    url = tenant_url or url_for(ctx.spec, ctx.settings, None)
    settings = sso.sso_settings(
        region=ctx.settings.region,
        user_pool_id=str(ctx.ids["userPoolId"]),
        client_id=str(ctx.ids["userPoolClientId"]),
        domain_prefix=str(ctx.ids["userPoolDomain"]),
        logout_url=sso.logout_urls(ctx.spec, url)[0],
        groups=ctx.spec.identity.groups,
    )
    environment = [{"name": name, "value": value} for name, value in settings.items()]
    secret = secret_ref(str(ctx.ids["clientSecretArn"]), sso.SECRET_KEY)
    return environment, [{"name": sso.SECRET_VARIABLE, "valueFrom": secret}]


def desired_task_definition(ctx: Context, tenant_url: str | None = None) -> dict[str, Any]:
    """The `RegisterTaskDefinition` arguments for this tenant (no I/O).

    Raises TransientError(WaitingForDependencies) while the role, the DB secret, the
    access point (or, with identity, a Cognito piece) has not been recorded yet.
    """
    _require_ids(ctx)
    settings = ctx.settings
    secret_arn = str(ctx.ids["dbSecretArn"])
    role_arn = str(ctx.ids["taskRoleArn"])
    sso_environment, sso_secrets = sso_container_settings(ctx, tenant_url)
    container: dict[str, Any] = {
        "name": ctx.names.container,
        "image": ctx.spec.image,
        "essential": True,
        "portMappings": [{"containerPort": settings.container_port, "protocol": "tcp"}],
        # Only what is not secret; the credentials come from `secrets` below.
        "environment": [
            {"name": "WPENV_TENANT_ID", "value": ctx.names.tenant},
            *sso_environment,
        ],
        "secrets": [
            *({"name": n, "valueFrom": secret_ref(secret_arn, key)} for n, key in SECRET_KEYS),
            *sso_secrets,
        ],
        "mountPoints": [
            {"sourceVolume": VOLUME, "containerPath": CONTENT_PATH, "readOnly": False}
        ],
        "healthCheck": {
            "command": ["CMD-SHELL", HEALTH_COMMAND],
            "interval": 30,
            "timeout": 5,
            "retries": 3,
            "startPeriod": 60,
        },
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": ctx.names.log_group,
                "awslogs-region": settings.region,
                "awslogs-stream-prefix": LOG_PREFIX,
            },
        },
    }
    return {
        "family": ctx.names.task_family,
        "requiresCompatibilities": ["FARGATE"],
        "networkMode": "awsvpc",
        "cpu": str(ctx.spec.cpu),
        "memory": str(ctx.spec.memory),
        "taskRoleArn": role_arn,
        "executionRoleArn": role_arn,
        "containerDefinitions": [container],
        "volumes": [
            {
                "name": VOLUME,
                "efsVolumeConfiguration": {
                    "fileSystemId": settings.file_system_id,
                    "rootDirectory": "/",
                    "transitEncryption": "ENABLED",
                    "authorizationConfig": {
                        "accessPointId": str(ctx.ids["accessPointId"]),
                        "iam": "ENABLED",
                    },
                },
            }
        ],
        "tags": [{"key": k, "value": v} for k, v in ctx.tags.items()],
    }


def _by_name(items: list[Any]) -> list[Any]:
    """Lists of named entries (environment, secrets) in a stable order: AWS may reorder."""
    if items and all(isinstance(i, dict) and "name" in i for i in items):
        return sorted(items, key=lambda i: str(i["name"]))
    return items


def matches(desired: Any, actual: Any) -> bool:
    """Whether `actual` carries everything in `desired`; keys only `actual` has are ignored.

    ECS (and moto) echo our fields back with defaults added (`hostPort`, `cpu: 0`,
    `volumesFrom`, ...); those must not make a revision look stale.
    """
    if isinstance(desired, dict):
        return isinstance(actual, dict) and all(
            matches(value, actual.get(key)) for key, value in desired.items()
        )
    if isinstance(desired, list):
        if not isinstance(actual, list) or len(desired) != len(actual):
            return False
        return all(
            matches(d, a) for d, a in zip(_by_name(desired), _by_name(actual), strict=True)
        )
    return bool(desired == actual)


def differences(desired: dict[str, Any], observed: dict[str, Any], tags: list[Any]) -> list[str]:
    """Names of the top-level fields (and "tags") where the revision differs from the plan."""
    fields = [key for key in COMPARED if not matches(desired.get(key), observed.get(key))]
    have = {t.get("key"): t.get("value") for t in tags}
    if any(have.get(t["key"]) != t["value"] for t in desired["tags"]):
        fields.append("tags")
    return fields


def parse_arn(arn: str) -> tuple[str, int] | None:
    """(family, revision) of a task definition ARN, None if it is not one."""
    found = _ARN_TAIL.search(arn)
    return (found["family"], int(found["revision"])) if found else None


def family_arns(ctx: Context, status: str = "ACTIVE") -> list[str]:
    """ARNs of the tenant family's revisions in `status`, newest first."""
    family = ctx.names.task_family
    arns: list[tuple[int, str]] = []
    paginator = ctx.clients.ecs.get_paginator("list_task_definitions")
    pages = paginator.paginate(familyPrefix=family, status=status, sort="DESC")
    for page in pages:
        for arn in page.get("taskDefinitionArns", []):
            parsed = parse_arn(arn)
            # familyPrefix is an exact family in AWS; check anyway, it is cheap.
            if parsed and parsed[0] == family:
                arns.append((parsed[1], arn))
    # moto ignores `sort`: order by revision ourselves.
    return [arn for _, arn in sorted(arns, reverse=True)]


def _desired(ctx: Context) -> dict[str, Any]:
    """`desired_task_definition` with the tenant's URL read when sign-out needs it."""
    _require_ids(ctx)  # before any call: may be waiting
    needs_url = identity.enabled(ctx) and not ctx.spec.identity.logout_urls
    return desired_task_definition(ctx, identity.tenant_url(ctx) if needs_url else None)


def _describe(ctx: Context, arn: str) -> tuple[dict[str, Any], list[Any]] | None:
    try:
        found = ctx.clients.ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
    except ClientError as exc:
        if aws.is_not_found(exc) or aws.error_code(exc) == "ClientException":
            return None
        raise
    return dict(found["taskDefinition"]), list(found.get("tags") or [])


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class TaskDefinition:
    """ECS task definition family of one tenant (condition group "Compute")."""

    kind = "TaskDefinition"
    group = "Compute"

    def observe(self, ctx: Context) -> Observation:
        """The newest ACTIVE revision, compared with the plan on the fields we set."""
        for arn in family_arns(ctx):
            described = _describe(ctx, arn)
            if described is not None:
                break
        else:
            return MISSING
        revision, tags = described
        containers: list[dict[str, Any]] = revision.get("containerDefinitions") or [{}]
        facts = {"revision": revision.get("revision"), "image": containers[0].get("image")}
        ids = {"taskDefinitionArn": str(revision["taskDefinitionArn"])}
        try:
            desired = _desired(ctx)
        except TransientError as exc:
            # Cannot tell whether it is current; update() will wait for the dependencies.
            return Observation(exists=True, up_to_date=False, ids=ids, detail=str(exc),
                               facts=facts)
        stale = differences(desired, revision, tags)
        detail = STALE.format(revision=revision.get("revision"), fields=", ".join(stale))
        return Observation(
            exists=True,
            up_to_date=not stale,
            ids=ids,
            ready=True,  # a registered revision is usable at once
            detail=detail if stale else "",
            facts=facts,
        )

    def create(self, ctx: Context) -> None:
        """Register the first revision, or adopt the newest one if it already matches."""
        self._ensure(ctx)

    def update(self, ctx: Context, observed: Observation) -> None:
        """Register a new revision when the newest one differs from the plan."""
        self._ensure(ctx)

    def _ensure(self, ctx: Context) -> None:
        desired = _desired(ctx)  # before any other call: may be waiting
        current = self.observe(ctx)
        if current.exists and current.up_to_date:
            ctx.remember(current.ids)
            return
        registered = ctx.clients.ecs.register_task_definition(**desired)["taskDefinition"]
        arn = str(registered["taskDefinitionArn"])
        ctx.remember({"taskDefinitionArn": arn})
        log.info("registered %s for %s", arn, ctx.names.tenant)

    def delete(self, ctx: Context) -> None:
        """Deregister every ACTIVE revision, then delete the inactive ones where supported."""
        ecs = ctx.clients.ecs
        for arn in family_arns(ctx):
            try:
                ecs.deregister_task_definition(taskDefinition=arn)
            except ClientError as exc:
                if aws.is_not_found(exc):
                    continue
                described = _describe(ctx, arn)
                if described is not None and described[0].get("status") == "ACTIVE":
                    raise
            log.info("deregistered %s of %s", arn, ctx.names.tenant)
        inactive = family_arns(ctx, status="INACTIVE")
        for batch in _chunks(inactive, DEREGISTER_BATCH):
            try:
                # Revisions still used by a task come back in `failures`: ECS deletes
                # them once their tasks stop, so there is nothing to retry.
                ecs.delete_task_definitions(taskDefinitions=batch)
            except AttributeError:
                return  # an SDK without DeleteTaskDefinitions
            except ClientError as exc:
                code = aws.error_code(exc)
                if code in ("UnknownOperationException", "InvalidAction", "NotImplemented"):
                    return  # an endpoint without it: INACTIVE revisions are harmless
                if not aws.is_not_found(exc):
                    raise
