"""The operator's settings: one class, read from WPENV_* environment variables.

In production these name the shared infrastructure that Terraform owns (HLD 2.0); on the
local platform `make up` writes them to `.local/env`. Lists are comma-separated so a plain
`export WPENV_LISTENER_ARNS=a,b` works.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

CommaList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    """Everything the operator needs to know that is not in a WordPressEnvironment."""

    model_config = SettingsConfigDict(env_prefix="WPENV_", extra="ignore")

    # Shared infrastructure (Terraform outputs in production).
    cluster_name: str = Field("wpenv", description="ECS cluster that runs every tenant's service.")
    vpc_id: str = Field("", description="VPC of the shared infrastructure.")
    private_subnet_ids: CommaList = Field(
        default_factory=list, description="Private subnets for tenant tasks."
    )
    alb_security_group_id: str = Field("", description="Security group of the internal ALB.")
    alb_dns_name: str = Field("", description="DNS name of the internal ALB, for tenant URLs.")
    listener_arns: CommaList = Field(
        default_factory=list, description="Pool of ALB listeners that hold tenant rules."
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
    efs_mount_path: Path = Field(
        Path("/mnt/efs"), description="Where the operator sees the shared file system."
    )
    region: str = Field("us-east-1", description="AWS region of the shared infrastructure.")

    # Behaviour.
    max_concurrent_provisions: int = Field(
        10, ge=1, description="Provisions running at once; the rest wait (HLD 5.3)."
    )
    rules_per_listener: int = Field(100, ge=1, description="Listener rule quota (HLD 8).")
    user_pool_quota: int = Field(60, ge=1, description="Cognito user pools per account (HLD 8).")
    drift_interval_seconds: float = Field(600.0, gt=0, description="Period of the drift check.")
    orphan_scan_interval_seconds: float = Field(86400.0, gt=0, description="Orphan scan period.")
    retry_base_seconds: float = Field(2.0, gt=0, description="First backoff delay.")
    retry_max_seconds: float = Field(120.0, gt=0, description="Backoff cap.")
    container_port: int = Field(80, description="Port WordPress listens on inside the task.")
    operator_name: str = Field("wpenv-operator", description="Value of the managed-by tag.")
    health_port: int = Field(8080, description="Port of the liveness endpoint (/healthz).")
    metrics_port: int = Field(9090, description="Port of the Prometheus metrics endpoint.")

    @field_validator("private_subnet_ids", "listener_arns", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value
