"""Pure planning: names, tags and URLs derived from a manifest. No I/O.

Every AWS and MySQL name is a function of the tenant id (and, where uniqueness must hold
across namespaces, the object's namespace/name), so a restarted operator recomputes the
same names and finds what it created before instead of creating a second one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wpenv.api.models import GROUP, WordPressEnvironmentSpec
from wpenv.settings import Settings

TAG_ENVIRONMENT = f"wpenv.{GROUP}/environment"
TAG_TENANT = f"wpenv.{GROUP}/tenant"
TAG_MANAGED_BY = "app.kubernetes.io/managed-by"
TAG_RETAINED = f"wpenv.{GROUP}/retained"


def _digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


# AWS's alternating-users rotation names the second user `<user>_clone` (and toggles back).
CLONE_SUFFIX = "_clone"


def clone_user(user: str) -> str:
    """The rotation's other user for `user`: `<user>_clone`, or back without the suffix."""
    return user.removesuffix(CLONE_SUFFIX) if user.endswith(CLONE_SUFFIX) else user + CLONE_SUFFIX


def fit(prefix: str, tenant: str, limit: int, seed: str | None = None, sep: str = "-") -> str:
    """`prefix + tenant` when it fits in `limit`, else truncated with a stable hash suffix.

    The hash keeps two long tenant ids that share a prefix from colliding after truncation.
    """
    full = f"{prefix}{tenant}"
    if len(full) <= limit and seed is None:
        return full
    suffix = _digest(seed or tenant, 8)
    room = limit - len(prefix) - len(suffix) - 1
    return f"{prefix}{tenant[:room].rstrip('-_')}{sep}{suffix}"


# Words Cognito refuses anywhere in a hosted-domain prefix ("Domain cannot contain reserved
# word: ..."); "amazoncognito" holds two of them.
COGNITO_RESERVED_WORDS = ("aws", "amazon", "cognito")


def without_words(text: str, words: Iterable[str]) -> str:
    """`text` with every occurrence of `words` taken out, until none is left.

    Repeated because taking one out can join the halves of another ("awcognitos" -> "aws").
    """
    while True:
        shorter = text
        for word in words:
            shorter = shorter.replace(word, "")
        if shorter == text:
            return text
        text = shorter


def cognito_domain_prefix(namespace: str, name: str, tenant: str) -> str:
    """The hosted-domain prefix: `wpenv-<tenant>-<hash>`, valid for every valid tenant id.

    Prefixes are global across every AWS account: the hash of namespace/name/tenant keeps
    two clusters or namespaces with one tenant id apart, and keeps apart two tenants that
    differ only in a reserved word Cognito refuses (taken out of the readable part). At most
    6 + 32 + 1 + 8 characters of lowercase letters, digits and hyphens, within Cognito's 63.
    Tenant ids without a reserved word keep the prefix they always had.
    """
    seed = f"{namespace}/{name}/{tenant}"
    readable = tenant
    if any(word in tenant for word in COGNITO_RESERVED_WORDS):
        readable = re.sub(r"-+", "-", without_words(tenant, COGNITO_RESERVED_WORDS)).strip("-")
    if not readable:
        return f"wpenv-{_digest(seed, 8)}"
    return fit("wpenv-", readable, 63, seed=seed)


@dataclass(frozen=True)
class Names:
    """Every name the operator gives to one environment's resources."""

    tenant: str
    base: str
    security_group: str
    task_role: str
    execution_role: str
    access_point: str
    access_point_root: str
    posix_uid: int
    database: str
    database_user: str
    db_secret: str
    site_secret: str
    task_family: str
    container: str
    service: str
    target_group: str
    log_group: str
    user_pool: str
    user_pool_domain: str
    client_secret: str


def names_for(namespace: str, name: str, tenant: str) -> Names:
    """Deterministic names for the environment `namespace/name` of `tenant`."""
    base = f"wpenv-{tenant}"
    sql_tenant = tenant.replace("-", "_")
    return Names(
        tenant=tenant,
        base=base,
        security_group=base,
        task_role=fit("wpenv-", tenant, 64 - len("-task")) + "-task",
        # ECS pulls the image, reads the secrets and writes the logs with this one; the
        # task role above is what the application may do.
        execution_role=fit("wpenv-", tenant, 64 - len("-exec")) + "-exec",
        access_point=base,
        access_point_root=f"/tenants/{tenant}",
        # One POSIX id per tenant, away from system ranges, so tenants cannot read each
        # other's files even through a misconfigured mount.
        posix_uid=20000 + int(_digest(tenant, 6), 16) % 1_000_000,
        database=fit("wp_", sql_tenant, 64, sep="_"),
        # MySQL 8 user names: 32 characters, and the rotation's second user adds "_clone".
        database_user=fit("wp_", sql_tenant, 32 - len(CLONE_SUFFIX), sep="_"),
        db_secret=f"wpenv/{tenant}/database",
        site_secret=f"wpenv/{tenant}/wordpress",  # its keys, salts and admin login
        task_family=base,
        container="wordpress",
        service=base,
        target_group=fit("wp-", tenant, 32),  # ELB names: 32 characters
        log_group=f"/wpenv/{tenant}",
        user_pool=base,
        user_pool_domain=cognito_domain_prefix(namespace, name, tenant),
        client_secret=f"wpenv/{tenant}/oidc-client",
    )


def tenant_directory(settings: Settings, tenant: str) -> Path:
    """Where the operator sees a tenant's root directory: `<efs mount>/tenants/<tenant>`."""
    root = names_for("", "", tenant).access_point_root
    return Path(settings.efs_mount_path) / root.lstrip("/")


def tags_for(namespace: str, name: str, tenant: str, settings: Settings) -> dict[str, str]:
    """Tags on every resource: who owns it, so an orphan scan can match it to a manifest."""
    return {
        TAG_ENVIRONMENT: f"{namespace}.{name}",
        TAG_TENANT: tenant,
        TAG_MANAGED_BY: settings.operator_name,
    }


def path_prefix(spec: WordPressEnvironmentSpec) -> str:
    """The routing prefix: the spec's, or /<tenantId>."""
    return spec.routing.path_prefix or f"/{spec.tenant_id}"


@dataclass(frozen=True)
class Route:
    """The requests a tenant's listener rule claims: `host` ("" for any) and `prefix`."""

    host: str
    prefix: str


def route_of(spec: WordPressEnvironmentSpec) -> Route:
    """The route the listener rule matches (see `reconcilers.listener_rule`)."""
    return Route(host=spec.routing.host, prefix=path_prefix(spec))


def _host_key(host: str) -> str:
    """Host headers match without regard to case, and `example.com.` is `example.com`."""
    return host.strip().rstrip(".").casefold()


def _prefix_key(prefix: str) -> str:
    """`/a/` is `/a`, and `/` is the empty prefix that holds every path. Paths keep their
    case: ALB path patterns are case sensitive, so `/A` and `/a` are two routes."""
    return "/" + prefix.strip().strip("/")


def routes_overlap(a: Route, b: Route) -> bool:
    """Whether some request would match both routes' listener rules.

    A rule matches `prefix` and `prefix/*` (and, with a host, that host only), so one
    prefix shadows another when they are equal or one lies below the other: `/a` and
    `/a/b` overlap, `/a` and `/ab` do not. A route without a host matches every host, so
    it overlaps a route with one; two different hosts never overlap.
    """
    ha, hb = _host_key(a.host), _host_key(b.host)
    if ha and hb and ha != hb:
        return False
    pa, pb = _prefix_key(a.prefix), _prefix_key(b.prefix)
    if pa == "/" or pb == "/":
        return True
    return pa == pb or pa.startswith(pb + "/") or pb.startswith(pa + "/")


# A listener's protocol -> the URL scheme and the port a URL leaves out.
_SCHEMES = {"HTTP": ("http", 80), "HTTPS": ("https", 443)}


@dataclass(frozen=True)
class Endpoint:
    """Where a tenant placed on a load balancer answers: its DNS name, listener port, protocol."""

    dns_name: str
    port: int
    protocol: str


def url_for(spec: WordPressEnvironmentSpec, endpoint: Endpoint | None) -> str:
    """Where the tenant's WordPress answers through the load balancer it is placed on.

    The spec's host, else the load balancer's DNS name; `https` when the listener is an
    HTTPS one (Cognito accepts nothing else for a callback that is not on localhost); the
    listener's port unless it is the scheme's default. Without an endpoint (not placed):
    http on the spec's host, or a placeholder.
    """
    protocol = endpoint.protocol if endpoint else "HTTP"
    scheme, default_port = _SCHEMES.get(protocol.upper(), _SCHEMES["HTTP"])
    host = spec.routing.host or (endpoint.dns_name if endpoint else "") or "alb.local"
    port = "" if endpoint is None or endpoint.port == default_port else f":{endpoint.port}"
    return f"{scheme}://{host}{port}{path_prefix(spec)}/"


# --- placement on the load balancer pool (ELBv2's quotas are per load balancer) ----------


@dataclass(frozen=True)
class LoadBalancerQuotas:
    """ELBv2's per-load-balancer quotas ("Quotas for your Application Load Balancers")."""

    rules: int
    target_groups: int
    targets: int

    @classmethod
    def of(cls, settings: Settings) -> LoadBalancerQuotas:
        """The quotas the settings name (AWS's defaults unless raised)."""
        return cls(settings.rules_per_load_balancer, settings.target_groups_per_load_balancer,
                   settings.targets_per_load_balancer)


@dataclass(frozen=True)
class LoadBalancerUsage:
    """What one load balancer holds: non-default rules, target groups its listeners
    forward to (each counted once), and their registered targets (None: not counted)."""

    arn: str
    rules: int
    target_groups: int
    targets: int | None = None

    @property
    def name(self) -> str:
        """The load balancer's name, from its ARN (…:loadbalancer/app/<name>/<id>)."""
        parts = self.arn.split("/")
        return parts[-2] if len(parts) >= 3 else self.arn


def tenant_targets(spec: WordPressEnvironmentSpec) -> int:
    """The most targets a tenant registers: one per task, at the scaler's maximum."""
    return max(spec.replicas, spec.autoscaling.max_replicas if spec.autoscaling else 0)


# Our target groups' names (Names.target_group), and the most targets one can hold at once:
# the schema's most tasks (replicas and autoscaling.maxReplicas are at most 10) at the
# service's deployment maximum (200 %: a rollout starts the new tasks before it stops the old).
TENANT_TARGET_GROUP_PREFIX = "wp-"
MOST_TASKS = 10
ROLLOUT_SURGE = 2


def target_ceiling(groups: Iterable[str], declared: Mapping[str, int]) -> int:
    """The most targets our target groups (by name) can hold at once, each at its
    tenant's declared maximum (`tenant_targets`, from its reservation) or the schema's,
    times the rollout surge. What needs no DescribeTargetHealth to know it fits."""
    return sum(ROLLOUT_SURGE * declared.get(name, MOST_TASKS) for name in groups)


def shortfall(usage: LoadBalancerUsage, quotas: LoadBalancerQuotas, targets: int) -> list[str]:
    """The quotas one more tenant (a rule, a target group, `targets`) would break, as
    "rules 100/100"; empty when it fits. Targets not counted yet are not judged."""
    short = []
    if usage.rules + 1 > quotas.rules:
        short.append(f"rules {usage.rules}/{quotas.rules}")
    if usage.target_groups + 1 > quotas.target_groups:
        short.append(f"target groups {usage.target_groups}/{quotas.target_groups}")
    if usage.targets is not None and usage.targets + targets > quotas.targets:
        short.append(f"targets {usage.targets}+{targets}/{quotas.targets}")
    return short


POOL_FULL = (
    "every load balancer in the pool is full ({detail}); add a load balancer with an HTTPS "
    "listener to WPENV_LOAD_BALANCER_ARNS, or raise the adjustable quota in Service Quotas "
    "and the matching WPENV_*_PER_LOAD_BALANCER setting; the environment waits and retries"
)


def pool_full_message(
    usages: Iterable[LoadBalancerUsage], quotas: LoadBalancerQuotas, targets: int
) -> str:
    """What a full pool is short of, per load balancer, and what to add."""
    detail = "; ".join(
        f"{u.name}: {', '.join(shortfall(u, quotas, targets))}" for u in usages
    )
    return POOL_FULL.format(detail=detail)


_IDENT = re.compile(r"^[A-Za-z0-9_]{1,64}$")


def sql_identifier(value: str) -> str:
    """A validated, backtick-quoted MySQL identifier; refuses anything unexpected."""
    if not _IDENT.fullmatch(value):
        raise ValueError("not a safe SQL identifier")
    return f"`{value}`"


ARCHIVE_TIMESTAMP = "%Y%m%dT%H%M%SZ"


def archive_timestamp(moment: datetime) -> str:
    """`moment` in UTC as 20261127T143000Z; a naive datetime is taken to be UTC already.

    Basic ISO 8601 without separators: sorts as text in time order and needs no quoting
    in an S3 key or a shell.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(ARCHIVE_TIMESTAMP)


def archive_prefix(settings: Settings, namespace: str, name: str, timestamp: datetime) -> str:
    """`<archive_prefix>/<namespace>/<name>/<timestamp>`: where one archive's objects go.

    Keyed by the Kubernetes object rather than the tenant id, so the archives of one
    environment stay together even if a later environment reuses its tenant id; the
    timestamp keeps every deprovisioning's archive apart (a retried one overwrites its own).
    """
    parts = [settings.archive_prefix.strip("/"), namespace, name, archive_timestamp(timestamp)]
    return "/".join(part for part in parts if part)


def tag_dict(tags: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    """AWS tag lists (`Key`/`Value`, or ECS's `key`/`value`) as one dict."""
    found: dict[str, str] = {}
    for tag in tags or []:
        key = tag.get("Key", tag.get("key"))
        if key is not None:
            found[str(key)] = str(tag.get("Value", tag.get("value", "")))
    return found


def tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    """Tags in the Key/Value list form most AWS APIs take."""
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def tag_diff(wanted: Mapping[str, str], described: Mapping[str, Any]) -> dict[str, str]:
    """Tags in `wanted` that a described resource (AWS `Tags` Key/Value list) lacks or differs on.

    One rule for every resource, so a hand-removed tag is repaired the same way everywhere.
    """
    have = {t["Key"]: t.get("Value") for t in described.get("Tags") or []}
    return {k: v for k, v in wanted.items() if have.get(k) != v}
