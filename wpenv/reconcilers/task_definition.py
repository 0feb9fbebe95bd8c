"""The tenant's ECS task definition: one WordPress container on Fargate.

A task definition cannot be changed, only superseded: a new spec (image, cpu, memory) means
a new revision of the tenant's family, and the service follows the newest revision. The
database credentials never appear in it: the container's `secrets` name the tenant's
Secrets Manager secret by ARN and JSON key, and ECS injects the values when a task starts.
Files live on EFS through the tenant's access point, mounted with IAM authorization and
TLS in transit, so the task role (and nothing else) decides who may mount it.

Observe lists the family's ACTIVE revisions and describes the newest; what it finds (a
`Family`) has the same shape as what the orphan scan finds through the Resource Groups
Tagging API, so one `remove` deregisters and deletes for both. Registering is not an
upsert, so create and update register only when the newest revision differs from the plan.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from wpenv import aws, mysql, reasons, sso
from wpenv.errors import TransientError
from wpenv.plan import (
    TAG_ENVIRONMENT,
    TAG_MANAGED_BY,
    TAG_RETAINED,
    TAG_TENANT,
    path_prefix,
    tag_dict,
    url_for,
)
from wpenv.reconcilers import identity, log_group, site_secret
from wpenv.reconcilers.base import Context, Found, Observation, Resource
from wpenv.settings import Settings

log = logging.getLogger(__name__)

WAITING_FOR = "the task definition needs {missing} recorded first"
STALE = "revision {revision} differs from the spec in {fields}"

# The ids the task definition names; each is recorded by another resource.
REQUIRED_IDS = (
    "taskRoleArn", "executionRoleArn", "logGroupArn", "dbSecretArn", "siteSecretArn",
    "accessPointId",
)
VOLUME = "wp-content"
CONTENT_PATH = "/var/www/html/wp-content"
LOG_PREFIX = "wordpress"
HEALTH_COMMAND = "curl -fsS http://localhost{prefix}/wp-login.php >/dev/null || exit 1"
# Container variable -> JSON key of the tenant's DB secret. The host is not among them: ECS
# injects one key per variable, and WordPress takes the port only as part of DB_HOST
# (`host:port`), so WORDPRESS_DB_HOST is the settings' endpoint (not a secret) instead.
SECRET_KEYS = (
    ("WORDPRESS_DB_USER", "username"),
    ("WORDPRESS_DB_PASSWORD", "password"),
    ("WORDPRESS_DB_NAME", "dbname"),
)
# Container variable -> JSON key of the tenant's site secret: the keys and salts all tasks
# share (a sign-in survives a request another task answers) and the admin the image's
# first install creates (README: what the image must provide).
SITE_SECRET_KEYS = (
    *((f"WORDPRESS_{key}", key) for key in site_secret.SALT_KEYS),
    ("WORDPRESS_ADMIN_USER", site_secret.ADMIN_USER),
    ("WORDPRESS_ADMIN_PASSWORD", site_secret.ADMIN_PASSWORD),
    ("WORDPRESS_ADMIN_EMAIL", site_secret.ADMIN_EMAIL),
)
# Where WordPress answers: the tenant's URL (home and siteurl) and the path prefix it must
# live under, since the load balancer forwards `/<prefix>/...` unchanged.
SITE_URL_VARIABLE = "WPENV_SITE_URL"
PATH_PREFIX_VARIABLE = "WPENV_PATH_PREFIX"
SITE_TITLE_VARIABLE = "WORDPRESS_SITE_TITLE"
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
DELETE_BATCH = 10  # DeleteTaskDefinitions takes at most ten references
# ECS has no not-found code for task definitions: an unknown revision is a ClientException
# ("Unable to describe task definition"), in AWS and in moto alike.
GONE = "ClientException"
# An endpoint without DeleteTaskDefinitions: INACTIVE revisions are harmless, so stop there.
NO_DELETE = frozenset({"UnknownOperationException", "InvalidAction", "NotImplemented"})
_ARN_TAIL = re.compile(r"task-definition/(?P<family>[^:/]+):(?P<revision>\d+)$")


def _require_ids(ctx: Context) -> None:
    # With single sign-on the container also names the Cognito pieces and the client secret.
    required = REQUIRED_IDS + (identity.IDENTITY_IDS if identity.enabled(ctx) else ())
    missing = [key for key in required if not ctx.ids.get(key)]
    if missing:
        raise TransientError(
            reasons.WAITING_FOR_DEPENDENCIES, WAITING_FOR.format(missing=", ".join(missing))
        )


def secret_ref(secret_arn: str, key: str) -> str:
    """`valueFrom` for one JSON key of a secret: `<arn>:<key>::` (current version)."""
    return f"{secret_arn}:{key}::"


def sso_container_settings(
    ctx: Context, tenant_url: str | None
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(environment, secrets) entries for the SSO plugin; both empty without identity.

    The client secret is a `secrets` reference to its Secrets Manager key, never a value.
    `tenant_url` is where sign-out lands (None: the URL of an unplaced tenant).
    """
    if not identity.enabled(ctx):
        return [], []
    url = tenant_url or url_for(ctx.spec, None)
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


# PHP the official image's wp-config.php evaluates (WORDPRESS_CONFIG_EXTRA): WordPress
# connects over TLS, since tenant users REQUIRE SSL and the server refuses clear text, and
# verifies the server's certificate (mysqlnd does not without the second flag), against
# the CA bundle the image trusts (README: what the image must provide).
DB_TLS_CONFIG = (
    "define('MYSQL_CLIENT_FLAGS', MYSQLI_CLIENT_SSL | MYSQLI_CLIENT_SSL_VERIFY_SERVER_CERT);\n"
)
# Then home and siteurl are the tenant's URL, read from the environment at run time (the
# same text for every tenant), so WordPress's links stay under the tenant's prefix whatever
# the database's options say.
SITE_URL_CONFIG = (
    "if (getenv('WPENV_SITE_URL')) {\n"
    "    define('WP_HOME', rtrim(getenv('WPENV_SITE_URL'), '/'));\n"
    "    define('WP_SITEURL', rtrim(getenv('WPENV_SITE_URL'), '/'));\n"
    "}\n"
)
BASE_CONFIG = DB_TLS_CONFIG + SITE_URL_CONFIG


def db_host(ctx: Context) -> str:
    """WORDPRESS_DB_HOST: the shared server as WordPress parses it, `host:port` (no I/O)."""
    host, port = mysql.endpoint(ctx.settings)
    return f"{host}:{port}"


def with_db_tls(environment: list[dict[str, str]]) -> list[dict[str, str]]:
    """`environment` whose WORDPRESS_CONFIG_EXTRA starts with BASE_CONFIG (no I/O)."""
    extra = next((e for e in environment if e["name"] == sso.CONFIG_EXTRA_VARIABLE), None)
    rest = [e for e in environment if e is not extra]
    value = BASE_CONFIG + (extra["value"] if extra else "")
    return [*rest, {"name": sso.CONFIG_EXTRA_VARIABLE, "value": value}]


def desired_container(ctx: Context, tenant_url: str | None) -> dict[str, Any]:
    """The WordPress container: credentials by reference only, files on the EFS volume."""
    settings = ctx.settings
    secret_arn, site_arn = str(ctx.ids["dbSecretArn"]), str(ctx.ids["siteSecretArn"])
    url = tenant_url or url_for(ctx.spec, None)
    sso_environment, sso_secrets = sso_container_settings(ctx, tenant_url)
    return {
        "name": ctx.names.container,
        "image": ctx.spec.image,
        "essential": True,
        "portMappings": [{"containerPort": settings.container_port, "protocol": "tcp"}],
        # Only what is not secret; the credentials come from `secrets` below.
        "environment": with_db_tls(
            [
                {"name": "WPENV_TENANT_ID", "value": ctx.names.tenant},
                {"name": "WORDPRESS_DB_HOST", "value": db_host(ctx)},
                {"name": SITE_URL_VARIABLE, "value": url},
                {"name": PATH_PREFIX_VARIABLE, "value": path_prefix(ctx.spec)},
                {"name": SITE_TITLE_VARIABLE, "value": ctx.names.tenant},
                *sso_environment,
            ]
        ),
        "secrets": [
            *({"name": n, "valueFrom": secret_ref(secret_arn, key)} for n, key in SECRET_KEYS),
            *({"name": n, "valueFrom": secret_ref(site_arn, key)} for n, key in SITE_SECRET_KEYS),
            *sso_secrets,
        ],
        "mountPoints": [
            {"sourceVolume": VOLUME, "containerPath": CONTENT_PATH, "readOnly": False}
        ],
        "healthCheck": {
            "command": ["CMD-SHELL", HEALTH_COMMAND.format(prefix=path_prefix(ctx.spec))],
            "interval": 30,
            "timeout": 5,
            "retries": 3,
            "startPeriod": 60,
        },
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                # The LogGroup kind's group: ECS creates none (no awslogs-create-group).
                "awslogs-group": log_group.name_of(str(ctx.ids["logGroupArn"])),
                "awslogs-region": settings.region,
                "awslogs-stream-prefix": LOG_PREFIX,
            },
        },
    }


def desired_task_definition(ctx: Context, tenant_url: str | None = None) -> dict[str, Any]:
    """The `RegisterTaskDefinition` arguments for this tenant (no I/O).

    Raises TransientError(WaitingForDependencies) while a role, the log group, the DB
    secret, the access point (or, with identity, a Cognito piece) is not recorded yet.
    """
    _require_ids(ctx)
    return {
        "family": ctx.names.task_family,
        "requiresCompatibilities": ["FARGATE"],
        "networkMode": "awsvpc",
        "cpu": str(ctx.spec.cpu),
        "memory": str(ctx.spec.memory),
        # What WordPress may do, and what ECS may do to start it: two roles (HLD 6).
        "taskRoleArn": str(ctx.ids["taskRoleArn"]),
        "executionRoleArn": str(ctx.ids["executionRoleArn"]),
        "containerDefinitions": [desired_container(ctx, tenant_url)],
        "volumes": [
            {
                "name": VOLUME,
                "efsVolumeConfiguration": {
                    "fileSystemId": ctx.settings.file_system_id,
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


def family_of(arn: str) -> str:
    """`wpenv-acme` of `arn:...:task-definition/wpenv-acme:3`."""
    return arn.rpartition("/")[2].rpartition(":")[0]


def family_arns(clients: Any, family: str, status: str = "ACTIVE") -> list[str]:
    """ARNs of the family's revisions in `status`, newest first."""
    arns: list[tuple[int, str]] = []
    paginator = clients.ecs.get_paginator("list_task_definitions")
    pages = paginator.paginate(familyPrefix=family, status=status, sort="DESC")
    for page in pages:
        for arn in page.get("taskDefinitionArns", []):
            parsed = parse_arn(arn)
            # familyPrefix is an exact family in AWS; check anyway, it is cheap.
            if parsed and parsed[0] == family:
                arns.append((parsed[1], arn))
    # moto ignores `sort`: order by revision ourselves.
    return [arn for _, arn in sorted(arns, reverse=True)]


# The shared cache's listings: every ACTIVE revision of the account (ListTaskDefinitions
# without a family, 100 a page), and the operator's revisions' tags (the tagging API).
LISTED = "ecs:ListTaskDefinitions"
TAGGED = "tag:GetResources"


def active_families(clients: Any) -> dict[str, list[str]]:
    """Family -> its ACTIVE revisions' ARNs, newest first, for every family."""
    found: dict[str, list[tuple[int, str]]] = {}
    pages = clients.ecs.get_paginator("list_task_definitions").paginate(status="ACTIVE")
    for page in pages:
        for arn in page.get("taskDefinitionArns", []):
            parsed = parse_arn(arn)
            if parsed:
                found.setdefault(parsed[0], []).append((parsed[1], str(arn)))
    return {family: [arn for _, arn in sorted(arns, reverse=True)]
            for family, arns in found.items()}


def tagged_revisions(clients: Any, settings: Settings) -> dict[str, list[dict[str, str]]]:
    """Revision ARN -> its tags (as DescribeTaskDefinition spells them), for every
    revision with our managed-by tag."""
    pages = clients.resourcegroupstaggingapi.get_paginator("get_resources").paginate(
        TagFilters=[{"Key": TAG_MANAGED_BY, "Values": [settings.operator_name]}],
        ResourceTypeFilters=["ecs:task-definition"],
    )
    return {
        str(mapping["ResourceARN"]): [{"key": key, "value": value}
                                      for key, value in tag_dict(mapping.get("Tags")).items()]
        for page in pages for mapping in page.get("ResourceTagMappingList", [])
    }


def _desired(ctx: Context) -> dict[str, Any]:
    """`desired_task_definition` with the tenant's URL (WordPress's home, and sign-out)."""
    _require_ids(ctx)  # before any call: may be waiting
    return desired_task_definition(ctx, identity.tenant_url(ctx))


def _describe(clients: Any, arn: str) -> tuple[dict[str, Any], list[Any]] | None:
    """(revision, tags) of one task definition; None when ECS does not know it."""
    try:
        found = clients.ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
    except ClientError as exc:
        if aws.error_code(exc) == GONE:
            return None
        raise
    return dict(found["taskDefinition"]), list(found.get("tags") or [])


def _chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


@dataclass(frozen=True)
class Family:
    """A task definition family as found: its revisions, which are ACTIVE, the newest.

    Observe knows the ACTIVE revisions and describes the newest (`current`, with its
    `tags`); the orphan scan knows every tagged revision but not their status (`active`
    None until `refresh` reads them). `remove` deregisters `active` (every revision when
    unknown) and deletes `revisions`.
    """

    family: str
    revisions: tuple[str, ...]
    active: tuple[str, ...] | None = None
    current: dict[str, Any] | None = None
    tags: tuple[Any, ...] = field(default=())


def _owner(tags: Mapping[str, str]) -> tuple[str, str]:
    """Whose a revision is, as the orphan scan groups revisions of a family."""
    return tags.get(TAG_ENVIRONMENT, ""), tags.get(TAG_TENANT, "")


class TaskDefinition(
    Resource,
    group="Compute",
    ids=("taskDefinitionArn",),
    gone={GONE},
    needs=("AccessPoint", "TaskRole", "DatabaseSecret", "SiteSecret", "LogGroup",
           "ExecutionRole"),
    retainable=True,
):
    """ECS task definition family of one tenant (condition group "Compute").

    The container names both roles, its log group, the DB secret and the access point
    (and, with single sign-on, the Cognito pieces, which the registry orders first).
    """

    def find(self, ctx: Context) -> Family | None:
        """The family's ACTIVE revisions and the newest one ECS still describes.

        Through the shared cache: the account's ACTIVE revisions are one listing, a
        revision's content never changes once registered (so it is described once and
        kept), and its tags come from the tagging API's listing.
        """
        family = ctx.names.task_family
        active: list[str] = self.cached(
            ctx, LISTED, "", family, bulk=lambda: active_families(ctx.clients),
            direct=lambda: family_arns(ctx.clients, family) or None,
        ) or []
        for arn in active:
            described = self._revision(ctx, arn)
            if described is not None:
                revision, tags = described
                return Family(family, tuple(active), tuple(active), revision, tuple(tags))
        return None

    def _revision(self, ctx: Context, arn: str) -> tuple[dict[str, Any], list[Any]] | None:
        """(revision, tags) of one ACTIVE revision; None when ECS does not know it."""
        owner = ctx.owner(self.kind)
        revision: dict[str, Any] | None = ctx.observations.kept(owner, arn)
        if revision is None:
            described = _describe(ctx.clients, arn)
            if described is not None:
                ctx.observations.keep(owner, arn, described[0])
            return described

        def direct() -> list[Any] | None:
            described = _describe(ctx.clients, arn)
            return None if described is None else described[1]

        tags: list[Any] | None = self.cached(
            ctx, TAGGED, "", arn, bulk=lambda: tagged_revisions(ctx.clients, ctx.settings),
            direct=direct,
        )
        return None if tags is None else (revision, tags)

    def inspect(self, ctx: Context, found: Family) -> Observation:
        """The newest ACTIVE revision, compared with the plan on the fields we set."""
        revision = found.current or {}  # find always describes the newest
        ids = {"taskDefinitionArn": str(revision["taskDefinitionArn"])}
        try:
            desired = _desired(ctx)
        except TransientError as exc:
            # Cannot tell whether it is current; update() will wait for the dependencies.
            return Observation(exists=True, up_to_date=False, ids=ids, detail=str(exc),
                               found=found)
        stale = differences(desired, revision, list(found.tags))
        detail = STALE.format(revision=revision.get("revision"), fields=", ".join(stale))
        return Observation(
            exists=True,
            up_to_date=not stale,
            ids=ids,
            ready=True,  # a registered revision is usable at once
            detail=detail if stale else "",
            found=found,
        )

    def create(self, ctx: Context, observed: Observation) -> None:
        """Register the first revision, or adopt the newest one if it already matches."""
        self._ensure(ctx, observed)

    def update(self, ctx: Context, observed: Observation) -> None:
        """Register a new revision when the newest one differs from the plan."""
        self._ensure(ctx, observed)

    def _ensure(self, ctx: Context, observed: Observation) -> None:
        desired = _desired(ctx)  # before any other call: may be waiting
        # Registering is no upsert (every call is a new revision): without a revision in
        # the observation, check first, as a pass we do not remember may have made one.
        found: Family | None = observed.found or self.find(ctx)
        current = found.current if found is not None else None
        tags = list(found.tags) if found is not None else []
        if current is not None and not differences(desired, current, tags):
            ctx.remember({"taskDefinitionArn": str(current["taskDefinitionArn"])})
            return
        registered = ctx.clients.ecs.register_task_definition(**desired)["taskDefinition"]
        arn = str(registered["taskDefinitionArn"])
        ctx.remember({"taskDefinitionArn": arn})
        log.info("registered %s for %s", arn, ctx.names.tenant)

    def remove(self, clients: Any, settings: Settings, found: Family) -> None:
        """Deregister the ACTIVE revisions, then delete them all where the API allows.

        Revisions still used by a task come back in DeleteTaskDefinitions' `failures`: ECS
        deletes them once their tasks stop, so there is nothing to retry.
        """
        ecs = clients.ecs
        for arn in found.revisions if found.active is None else found.active:
            try:
                ecs.deregister_task_definition(taskDefinition=arn)
            except ClientError as exc:
                if not self.is_gone(exc):  # gone, or already INACTIVE
                    raise
            log.info("deregistered %s", arn)
        for batch in _chunks(found.revisions, DELETE_BATCH):
            try:
                ecs.delete_task_definitions(taskDefinitions=batch)
            except ClientError as exc:
                if aws.error_code(exc) in NO_DELETE:
                    return
                if not self.is_gone(exc):
                    raise

    def tag(self, ctx: Context, recorded: str, tags: Mapping[str, str]) -> None:
        """TagResource on the recorded revision."""
        ctx.clients.ecs.tag_resource(
            resourceArn=recorded, tags=[{"key": k, "value": v} for k, v in tags.items()]
        )

    def managed(self, clients: Any, settings: Settings) -> Iterator[Found]:
        """Tagged revisions from the tagging API, one Found per family and owner.

        Listing every family's revisions one by one would cost a call per revision. A
        family whose revisions carry different owners (re-tagged by hand) gives one Found
        per owner; a retained revision makes its owner's Found retained.
        """
        paginator = clients.resourcegroupstaggingapi.get_paginator("get_resources")
        pages = paginator.paginate(
            TagFilters=[{"Key": TAG_MANAGED_BY, "Values": [settings.operator_name]}],
            ResourceTypeFilters=["ecs:task-definition"],
        )
        groups: dict[tuple[str, str, str], tuple[dict[str, str], list[str]]] = {}
        for page in pages:
            for mapping in page.get("ResourceTagMappingList", []):
                arn = str(mapping["ResourceARN"])
                tags = tag_dict(mapping.get("Tags"))
                tags_seen, arns = groups.setdefault((family_of(arn), *_owner(tags)), ({}, []))
                _merge_tags(tags_seen, tags)
                arns.append(arn)
        for (family, _environment, _tenant), (tags, arns) in groups.items():
            revisions = tuple(sorted(arns))
            yield Found(family, Family(family, revisions), tags, {"revisions": list(revisions)})

    def refresh(self, clients: Any, settings: Settings, item: Found) -> Found | None:
        """The revisions that still exist with the same owner, and which are ACTIVE."""
        found: Family = item.found
        revisions: list[str] = []
        active: list[str] = []
        tags: dict[str, str] = {}
        for arn in found.revisions:
            described = _describe(clients, arn)
            if described is None:
                continue
            revision, revision_tags = described
            now = tag_dict(revision_tags)
            if (revision.get("status") == "DELETE_IN_PROGRESS"
                    or now.get(TAG_MANAGED_BY) != settings.operator_name):
                continue
            if _owner(now) != _owner(item.tags):
                continue  # re-tagged for someone else since the scan: not this item any more
            revisions.append(arn)
            _merge_tags(tags, now)
            if revision.get("status") == "ACTIVE":
                active.append(arn)
        if not revisions:
            return None
        family = Family(found.family, tuple(revisions), tuple(active))
        return Found(item.id, family, tags, {"revisions": revisions, "active": active})


def _merge_tags(into: dict[str, str], tags: Mapping[str, str]) -> None:
    """One family's tags out of its revisions': the first seen, retained if any is."""
    for key, value in tags.items():
        into.setdefault(key, value)
    if tags.get(TAG_RETAINED) == "true":
        into[TAG_RETAINED] = "true"
