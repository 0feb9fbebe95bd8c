"""The operator's settings: one class, read from WPENV_* environment variables.

In production these name the shared infrastructure that Terraform owns (HLD 2.0); on the
local platform `make up` writes them to `.local/env`. Lists are comma-separated so a plain
`export WPENV_LOAD_BALANCER_ARNS=a,b` works.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from wpenv import ratelimits

CommaList = Annotated[list[str], NoDecode]
# The only retentions CloudWatch Logs accepts (PutRetentionPolicy, retentionInDays).
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
)


class Settings(BaseSettings):
    """Everything the operator needs to know that is not in a WordPressEnvironment."""

    model_config = SettingsConfigDict(env_prefix="WPENV_", extra="ignore")

    # Shared infrastructure (Terraform outputs in production).
    cluster_name: str = Field("wpenv", description="ECS cluster that runs every tenant's service.")
    vpc_id: str = Field("", description="VPC of the shared infrastructure.")
    private_subnet_ids: CommaList = Field(
        default_factory=list, description="Private subnets for tenant tasks."
    )
    alb_security_group_id: str = Field(
        "", description="Security group of the internal ALBs (every one in the pool)."
    )
    load_balancer_arns: CommaList = Field(
        default_factory=list,
        description="The pool of internal ALBs that hold tenant rules, in the order they "
        "fill; each has one HTTPS listener (the lowest-port one if several), and a tenant's "
        "URL is its load balancer's DNS name.",
    )
    file_system_id: str = Field("", description="Shared EFS file system.")
    archive_bucket: str = Field("", description="S3 bucket for deprovisioning archives.")
    archive_prefix: str = Field("archives", description="Key prefix inside the archive bucket.")
    archive_kms_key_id: str = Field(
        "",
        description="KMS key (id, ARN or alias) that encrypts archive objects (SSE-KMS); "
        "empty uses S3-managed keys (SSE-S3, AES256).",
    )
    db_master_secret_arn: str = Field(
        "", description="Secrets Manager secret with the shared RDS master credentials."
    )
    db_rotation_lambda_arn: str = Field(
        "", description="Rotation function for tenant DB secrets; empty turns rotation off."
    )
    db_rotation_master_secret_arn: str = Field(
        "",
        description="Superuser secret (engine, host, port, username, password) that AWS's "
        "alternating-users MySQL rotation function logs in with to clone and re-password a "
        "tenant's other user; written into each tenant secret as `masterarn`.",
    )
    role_permissions_boundary_arn: str = Field(
        "",
        description="Managed policy set as the permissions boundary of every IAM role the "
        "operator creates (manifests/overlays/production/tenant-boundary.json; its IAM "
        "policy allows CreateRole only with it). Empty: roles are created without one, "
        "which that policy refuses, so only for accounts without it.",
    )
    efs_mount_path: Path = Field(
        Path("/mnt/efs"), description="Where the operator sees the shared file system."
    )
    region: str = Field("us-east-1", description="AWS region of the shared infrastructure.")

    # Behaviour.
    max_concurrent_provisions: int = Field(
        10, ge=1, description="Provisions running at once; the rest wait (HLD 5.3)."
    )
    # ELBv2's quotas per Application Load Balancer ("Quotas for your Application Load
    # Balancers"), at AWS's defaults; set them to what Service Quotas shows for the account.
    rules_per_load_balancer: int = Field(
        100, ge=1, description="Rules per ALB, default rules not counted (adjustable)."
    )
    target_groups_per_load_balancer: int = Field(
        100, ge=1, description="Target groups per ALB (not adjustable)."
    )
    targets_per_load_balancer: int = Field(
        1000, ge=1, description="Targets per ALB (adjustable)."
    )
    user_pool_quota: int = Field(60, ge=1, description="Cognito user pools per account (HLD 8).")

    # Several processes (README, Several replicas): a standby per shard, several shards.
    coordination: Literal["local", "leases"] = Field(
        "local",
        description="local: one operator process, limits kept in memory; leases: several "
        "processes (replicas of a shard, several shards) agree through Lease objects in "
        "WPENV_LEASE_NAMESPACE: one leader per shard, and the provisioning limit, the load "
        "balancer placement and the user-pool quota count across all of them. The install "
        "sets leases.",
    )
    lease_namespace: str = Field(
        "wpenv-system", description="Namespace of the coordination Leases (the operator's own)."
    )
    lease_duration_seconds: int = Field(
        15,
        ge=1,
        description="How long a Lease holds without renewal (renewed every third of it); a "
        "standby takes over this long after its leader stopped renewing.",
    )
    shard_name: str = Field(
        "default",
        pattern=r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$",
        description="Name of this process's shard: its replicas share one leader Lease "
        "(wpenv-leader-<name>); every shard needs its own name.",
    )
    shard_selector: str = Field(
        "",
        description="Label selector of the environments this shard handles (e.g. "
        "wpenv.bbws.io/shard=a), applied to the watch by the API server; empty: all of them "
        "(in WPENV_NAMESPACES). Shards must not overlap.",
    )
    drift_interval_seconds: float = Field(
        600.0,
        gt=0,
        description="Period of the drift check. Each environment checks at its own moment "
        "within the period (a fixed offset from a hash of its uid), so they never all check "
        "at once, not even right after a restart.",
    )
    observation_ttl_seconds: float | None = Field(
        None,
        ge=0,
        description="How long one bulk listing of AWS serves every environment's drift "
        "check (wpenv.reconcilers.observations); 0 turns the shared cache off. Unset: "
        "nine tenths of the drift interval, so each interval lists each scope about once.",
    )
    orphan_scan_interval_seconds: float = Field(86400.0, gt=0, description="Orphan scan period.")
    aws_rate_limits: str = Field(
        "on",
        description="Client-side token buckets per AWS API family, so the operator waits "
        "rather than being throttled: 'on' (AWS's published rates, wpenv/ratelimits.py), "
        "'off', and/or comma-separated overrides service:name=capacity/refill, where "
        "service is the SigV4 signing name and name a family (e.g. "
        "ecs:ServiceRead=100/20) or an action (a bucket of its own). Set what Service "
        "Quotas shows when the account's rates were raised.",
    )
    retry_base_seconds: float = Field(2.0, gt=0, description="First backoff delay.")
    retry_max_seconds: float = Field(120.0, gt=0, description="Backoff cap.")
    aws_retry_mode: Literal["standard", "legacy"] = Field(
        "standard",
        description="botocore's retry mode for every AWS client (6 attempts). standard "
        "keeps a retry quota per client: after a run of failures (about 35 server errors) "
        "botocore stops retrying until successes refill it, and every failure goes to the "
        "engine's backoff, whose passes then rarely get through; legacy retries each "
        "throttle and 5xx up to the attempts, without a quota.",
    )
    aws_read_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="Seconds botocore waits for an AWS answer before it gives up and tries "
        "again (S3's archive uploads wait longer). Every create is safe to try again: a "
        "client token, a unique name or a lookup before the next attempt finds what the "
        "lost answer created.",
    )
    container_port: int = Field(80, description="Port WordPress listens on inside the task.")
    operator_name: str = Field("wpenv-operator", description="Value of the managed-by tag.")
    health_port: int = Field(8080, description="Port of the liveness endpoint (/healthz).")
    metrics_port: int = Field(9090, description="Port of the Prometheus metrics endpoint.")
    kube_connections: int = Field(
        20, ge=4, description="Connections kopf keeps to the Kubernetes API at most (each "
        "TLS connection holds a 256 KiB buffer); its watch streams hold one each.",
    )
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR.")
    log_format: Literal["json", "plain"] = Field(
        "json",
        description="json: one object per line (time, level, logger, message, and the "
        "environment's namespace, name and tenant), for a log pipeline; plain: text "
        "for a terminal (the local platform's `make run` sets it).",
    )
    log_retention_days: int = Field(
        30,
        description="Days CloudWatch Logs keeps a tenant's container logs (its log group's "
        "retention); one of the values PutRetentionPolicy accepts: "
        + ", ".join(str(d) for d in LOG_RETENTION_DAYS) + ".",
    )

    # The shared MySQL server (RDS): where it is and how every login is protected. The RDS
    # master secret holds only username and password, so the endpoint is set here.
    db_host: str = Field(
        "",
        description="Endpoint of the shared RDS instance (a Terraform output); every MySQL "
        "login and the tenants' DB secrets use it. Also the name its certificate is "
        "checked against.",
    )
    db_port: int = Field(3306, ge=1, le=65535, description="Port of the shared RDS instance.")
    db_ca_bundle: str = Field(
        "",
        description="PEM file of the CAs that sign the server's certificate (RDS: the "
        "region's bundle from the RDS documentation); every connection is TLS 1.2+ and "
        "verifies certificate and host name against it. Empty: the system trust store.",
    )
    db_max_user_connections: int = Field(
        50,
        ge=1,
        description="MAX_USER_CONNECTIONS of each tenant's MySQL user. The tenants share one "
        "RDS instance whose max_connections grows with its memory, so one busy or leaking "
        "tenant must not take them all: 50 is 25 concurrent PHP requests per task at the "
        "default 2 replicas, and a tenant over it gets error 1226, not its neighbours.",
    )

    @property
    def observation_ttl(self) -> float:
        """The shared observation cache's time to live in seconds (see the field)."""
        if self.observation_ttl_seconds is not None:
            return self.observation_ttl_seconds
        return self.drift_interval_seconds * 0.9

    @field_validator("log_retention_days")
    @classmethod
    def _known_retention(cls, value: int) -> int:
        """Refused here, at start, rather than by PutRetentionPolicy for every tenant."""
        if value not in LOG_RETENTION_DAYS:
            accepted = ", ".join(map(str, LOG_RETENTION_DAYS))
            raise ValueError(f"CloudWatch Logs accepts only these retentions: {accepted}")
        return value

    @field_validator("aws_rate_limits")
    @classmethod
    def _valid_rate_limits(cls, value: str) -> str:
        """Refused at start: a malformed override, or one that never refills (waits forever)."""
        limits = ratelimits.parse_limits(value, source="aws_rate_limits")
        dry = sorted(f"{limit.service}:{limit.name}" for limit in limits if limit.refill <= 0)
        if dry:
            raise ValueError(f"a bucket that never refills would stop every call: {dry}")
        return value

    @field_validator("observation_ttl_seconds", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """An empty variable (as the install's settings file writes it) means unset."""
        return None if value == "" else value

    @field_validator("private_subnet_ids", "load_balancer_arns", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value
