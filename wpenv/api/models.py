"""The WordPressEnvironment API: spec and status as pydantic models.

These models are the single source of the CRD schema (`wpenv.api.crd` generates
`crds/` from them), so every description here is what `kubectl explain` prints and every
constraint here is enforced by the API server before the operator sees a manifest.
Validation rules that span fields are CEL (`x-kubernetes-validations`), attached with
`json_schema_extra` next to the fields they check.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator
from pydantic.alias_generators import to_camel

GROUP = "bbws.io"
VERSION = "v1alpha1"
KIND = "WordPressEnvironment"
PLURAL = "wordpressenvironments"
SINGULAR = "wordpressenvironment"
SHORT_NAMES = ["wpenv"]

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

# Every resource carries the tag `<namespace>.<name>` (plan.tags_for); AWS tag values hold
# at most 256 characters and a namespace 63, which leaves 192 for the object's name. Only
# the API server sees metadata.name before the operator, so the CRD refuses longer names.
MAX_NAME_LENGTH = 256 - 63 - 1
NAME_RULE = {
    "rule": f"self.metadata.name.size() <= {MAX_NAME_LENGTH}",
    "message": f"metadata.name must be at most {MAX_NAME_LENGTH} characters: "
    "<namespace>.<name> is an AWS tag value (at most 256)",
    "reason": "FieldValueInvalid",
}
# An ALB host-header value: at most 128 characters, case insensitive (so lowercase only
# here: two spellings of one host would be two routes that overlap), no wildcards (they
# would claim other tenants' hosts), labels of at most 63 characters, a final label of
# letters (HostHeaderConditionConfig).
HOST = r"^$|^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
MAX_HOST_LENGTH = 128
# A Cognito redirect URL: https, or http on the loopback host only (what Cognito accepts
# for a web client), at most 1024 characters; no fragment, spaces, quotes or shell
# characters (`;`, `$`, backticks, `|`, `<`, `>`, `\\`, parentheses).
REDIRECT_URL = (
    r"^(https://[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?|http://(localhost|127\.0\.0\.1|\[::1\]))"
    r"(:[0-9]{1,5})?(/[-A-Za-z0-9._~%/:@?=&+,]*)?$"
)
MAX_URL_LENGTH = 1024
# A Cognito group name is 1-128 characters (CreateGroup); these are also the keys of the
# WordPress role map, so only letters, digits, `.`, `_` and `-`, starting alphanumeric.
GROUP_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
MAX_GROUP_LENGTH = 128


def _image_reference() -> str:
    """The OCI image reference grammar of distribution/reference, as one anchored regex.

    `[domain[:port]/]path[:tag][@digest]`: the domain (host name or [IPv6], optional port)
    may have capitals; path components are lowercase alphanumerics joined by `.`, `_`,
    `__` or dashes; a tag is at most 128 word characters, dots and dashes, not starting
    with a dot or dash; a digest is `algorithm:hex`. Only syntax that Python's `re` and
    RE2 (the API server's CEL `matches`) read alike: no `\\w`, no look-arounds.
    """
    alnum = "[a-z0-9]+"
    component = f"{alnum}(?:(?:[._]|__|-+){alnum})*"
    label = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
    host = rf"(?:{label}(?:\.{label})*|\[[a-fA-F0-9:]+\])"
    domain = f"{host}(?::[0-9]+)?"
    name = f"(?:{domain}/)?{component}(?:/{component})*"
    tag = "[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,127}"
    algorithm = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*"
    digest = f"{algorithm}:[0-9a-fA-F]{{32,}}"
    return f"^{name}(?::{tag})?(?:@{digest})?$"


IMAGE_REFERENCE = _image_reference()
IMAGE_MESSAGE = (
    "image must be an OCI image reference, [registry[:port]/]repository[:tag][@digest], "
    "with a lowercase repository and no spaces or shell characters"
)

# Fargate's task sizes: CPU units -> allowed memory (MiB). Kept as data so the CEL rule
# and the docs are generated from one table.
FARGATE_SIZES: dict[int, list[int]] = {
    256: [512, 1024, 2048],
    512: list(range(1024, 4096 + 1, 1024)),
    1024: list(range(2048, 8192 + 1, 1024)),
    2048: list(range(4096, 16384 + 1, 1024)),
    4096: list(range(8192, 30720 + 1, 1024)),
    8192: list(range(16384, 61440 + 1, 4096)),
    16384: list(range(32768, 122880 + 1, 8192)),
}


def _fargate_rule() -> str:
    """CEL that accepts exactly the (cpu, memory) pairs Fargate offers."""
    clauses = []
    for cpu, memories in FARGATE_SIZES.items():
        low, high = memories[0], memories[-1]
        step = memories[1] - memories[0] if len(memories) > 1 else 1
        if cpu == 256:
            clauses.append(f"(self.cpu == {cpu} && self.memory in {memories})")
        else:
            clauses.append(
                f"(self.cpu == {cpu} && self.memory >= {low} && self.memory <= {high}"
                f" && self.memory % {step} == 0)"
            )
    return " || ".join(clauses)


def _fargate_message() -> str:
    parts = [f"{cpu}: {mem[0]}-{mem[-1]}" for cpu, mem in FARGATE_SIZES.items()]
    return "cpu/memory is not a Fargate task size (cpu: memory MiB) " + "; ".join(parts)


class _Model(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_enum_values=True,
    )


class Phase(StrEnum):
    """The HLD's environment states (HLD 4.1)."""

    PENDING_PROVISIONING = "PendingProvisioning"
    PROVISIONING = "Provisioning"
    ACTIVE = "Active"
    SUSPENDED = "Suspended"
    FAILED = "Failed"
    PENDING_DEPROVISION = "PendingDeprovision"
    DEPROVISIONED = "Deprovisioned"


class DeletionPolicy(StrEnum):
    """What deleting the custom resource does to the AWS resources."""

    DELETE = "Delete"
    RETAIN = "Retain"


class Autoscaling(_Model):
    """Bounds for ECS service auto scaling on CPU (HLD 5.3: 2-10 tasks per tenant)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.minReplicas <= self.maxReplicas",
                    "message": "autoscaling.minReplicas must not exceed autoscaling.maxReplicas",
                    "fieldPath": ".minReplicas",
                }
            ]
        }
    )

    min_replicas: int = Field(2, ge=1, le=10, description="Fewest tasks the scaler keeps.")
    max_replicas: int = Field(10, ge=1, le=10, description="Most tasks the scaler starts.")
    target_cpu_utilization: int = Field(
        60, ge=10, le=90, description="Average CPU percentage the scaler aims for."
    )


class Routing(_Model):
    """How the tenant is reached through the shared, internal ALB (path-based, HLD 1.3)."""

    path_prefix: str = Field(
        "",
        max_length=64,
        pattern=r"^(/[a-z0-9][a-z0-9._-]*)*$",
        description=(
            "Path prefix on the tenant's load balancer, e.g. /acme. Empty means /<tenantId>. "
            "Requests for the prefix and everything below it go to this tenant."
        ),
    )
    host: str = Field(
        "",
        max_length=MAX_HOST_LENGTH,
        pattern=HOST,
        description=(
            "Optional host name the rule also matches (host-header condition): lowercase, "
            f"at most {MAX_HOST_LENGTH} characters, no wildcards."
        ),
    )
    remove_rule_when_suspended: bool = Field(
        True,
        description=(
            "When suspended, remove the listener rule so the path answers with the "
            "listener's default response instead of a 503 from an empty target group."
        ),
    )


RedirectUrl = Annotated[
    str, Field(min_length=1, max_length=MAX_URL_LENGTH, pattern=REDIRECT_URL)
]
GroupName = Annotated[
    str, Field(min_length=1, max_length=MAX_GROUP_LENGTH, pattern=GROUP_NAME)
]
# A list whose items are unique: the API server refuses a repeated item ("Duplicate value").
SET: dict[str, JsonValue] = {"x-kubernetes-list-type": "set"}


class Identity(_Model):
    """The tenant's own Cognito user pool for WordPress single sign-on (HLD 3.3)."""

    enabled: bool = Field(True, description="Provision a Cognito user pool for this tenant.")
    callback_urls: list[RedirectUrl] = Field(
        [],
        max_length=20,
        description="OAuth callback URLs (https, or http://localhost); empty derives one "
        "from the tenant's URL.",
        json_schema_extra=SET,
    )
    logout_urls: list[RedirectUrl] = Field(
        [],
        max_length=20,
        description="Sign-out URLs (https, or http://localhost); empty derives one from the "
        "tenant's URL.",
        json_schema_extra=SET,
    )
    groups: list[GroupName] = Field(
        ["Admin", "Editor", "Viewer"],
        max_length=25,
        description="User pool groups; each maps to the WordPress role of the same meaning.",
        json_schema_extra=SET,
    )


class WordPressEnvironmentSpec(_Model):
    """The desired state of one tenant's WordPress environment."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": _fargate_rule(),
                    "message": _fargate_message(),
                    "fieldPath": ".memory",
                    "reason": "FieldValueInvalid",
                },
                {
                    "rule": "!has(self.autoscaling) || (self.replicas >= "
                    "self.autoscaling.minReplicas && self.replicas <= "
                    "self.autoscaling.maxReplicas)",
                    "message": "replicas must lie within autoscaling.minReplicas and "
                    "autoscaling.maxReplicas",
                    "fieldPath": ".replicas",
                    "reason": "FieldValueInvalid",
                },
            ]
        }
    )

    tenant_id: str = Field(
        ...,
        min_length=1,
        max_length=32,
        pattern=DNS_LABEL,
        description=(
            "The customer organisation's id: a DNS label of at most 32 characters. It names "
            "every AWS resource and the database, so it cannot change after creation."
        ),
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "self == oldSelf", "message": "tenantId is immutable"}
            ]
        },
    )
    image: str = Field(
        "wordpress:6.8-apache",
        min_length=1,
        max_length=255,
        description=(
            "WordPress container image, an OCI image reference "
            "([registry[:port]/]repository[:tag][@digest]); a change rolls out a new task "
            "definition."
        ),
        json_schema_extra={
            # CEL rather than `pattern`: the API server's message is then ours, not the
            # whole regex. The validator below refuses the same in Python.
            "x-kubernetes-validations": [
                {
                    "rule": f"self.matches(r'{IMAGE_REFERENCE}')",
                    "message": IMAGE_MESSAGE,
                    "reason": "FieldValueInvalid",
                }
            ]
        },
    )
    replicas: int = Field(
        2,
        ge=0,
        le=10,
        description="Desired number of tasks (also set by kubectl scale).",
    )
    autoscaling: Autoscaling | None = Field(
        None, description="Optional CPU-based auto scaling; replicas must lie within it."
    )
    cpu: Literal[256, 512, 1024, 2048, 4096, 8192, 16384] = Field(
        512, description="Fargate task CPU units (256 = 0.25 vCPU)."
    )
    memory: int = Field(
        1024,
        ge=512,
        le=122880,
        description="Fargate task memory in MiB; must be offered for the chosen cpu.",
    )
    suspended: bool = Field(
        False,
        description="True scales the service to zero (HLD suspend); false resumes it.",
    )
    routing: Routing = Field(Routing(), description=Routing.__doc__)
    identity: Identity = Field(Identity(), description=Identity.__doc__)
    deletion_policy: DeletionPolicy = Field(
        DeletionPolicy.DELETE,
        description=(
            "Delete archives the database and files to S3, verifies them, then removes "
            "every AWS resource; Retain leaves them in place and only releases the finalizer."
        ),
    )

    @field_validator("image")
    @classmethod
    def _image_is_a_reference(cls, value: str) -> str:
        """The CRD's CEL rule on `image`, for specs that never went through the API server."""
        if not re.fullmatch(IMAGE_REFERENCE, value):
            raise ValueError(IMAGE_MESSAGE)
        return value


class Condition(_Model):
    """A Kubernetes-style condition (metav1.Condition)."""

    model_config = ConfigDict(extra="ignore")

    type: str = Field(..., description="Kind of condition, e.g. Ready, Database, Routing.")
    status: str = Field(..., description="True, False or Unknown.")
    reason: str = Field("", description="CamelCase reason for the last transition.")
    message: str = Field("", description="Human-readable detail.")
    observed_generation: int | None = Field(
        None, description="Generation of the spec the condition was computed from."
    )
    last_transition_time: str | None = Field(
        None,
        description="When status last changed.",
        json_schema_extra={"format": "date-time"},
    )


class ResourceIds(_Model):
    """Identifiers of every AWS resource created, so a restarted operator finds them."""

    model_config = ConfigDict(extra="ignore")

    security_group_id: str | None = Field(None, description="Tenant security group.")
    task_role_arn: str | None = Field(None, description="ECS task role.")
    execution_role_arn: str | None = Field(
        None, description="ECS task execution role (image pull, secrets, logs)."
    )
    access_point_id: str | None = Field(None, description="EFS access point.")
    access_point_arn: str | None = Field(None, description="EFS access point ARN.")
    database_name: str | None = Field(None, description="MySQL database on the shared server.")
    database_user: str | None = Field(None, description="MySQL user granted that database.")
    db_secret_arn: str | None = Field(None, description="Secret holding the DB credentials.")
    db_secret_version: str | None = Field(
        None,
        description="The version of that secret AWSCURRENT is on; when a rotation moves it, "
        "the service is rolled so that its tasks start with the new password.",
    )
    database_login_proven: str | None = Field(
        None,
        description="The DB secret whose password was last proven to log in as the database "
        "user: rotation is switched on only for it.",
    )
    site_secret_arn: str | None = Field(
        None, description="Secret holding WordPress's keys, salts and admin login."
    )
    log_group_arn: str | None = Field(None, description="CloudWatch Logs log group.")
    task_definition_arn: str | None = Field(None, description="Current task definition.")
    service_arn: str | None = Field(None, description="ECS service.")
    target_group_arn: str | None = Field(None, description="ALB target group.")
    load_balancer_arn: str | None = Field(
        None, description="Load balancer of the pool the tenant is placed on (it stays there)."
    )
    listener_arn: str | None = Field(
        None, description="That load balancer's HTTPS listener, which holds the rule."
    )
    listener_rule_arn: str | None = Field(None, description="The tenant's listener rule.")
    rule_priority: int | None = Field(None, description="Priority of that rule.")
    scalable_target: str | None = Field(None, description="Application Auto Scaling target.")
    user_pool_id: str | None = Field(None, description="Cognito user pool.")
    user_pool_client_id: str | None = Field(None, description="Cognito app client.")
    user_pool_domain: str | None = Field(None, description="Cognito hosted domain prefix.")
    client_secret_arn: str | None = Field(None, description="Secret holding the client secret.")


class ProvisioningTimes(_Model):
    """When provisioning was queued, started and finished (HLD 5.1: < 15 minutes)."""

    model_config = ConfigDict(extra="ignore")

    queued_at: str | None = Field(None, json_schema_extra={"format": "date-time"})
    started_at: str | None = Field(None, json_schema_extra={"format": "date-time"})
    finished_at: str | None = Field(None, json_schema_extra={"format": "date-time"})
    duration_seconds: float | None = Field(None, description="From started to Active.")
    within_target: bool | None = Field(None, description="Whether it beat the 15-minute target.")


class ArchiveLocations(_Model):
    """Where deprovisioning put the tenant's data (S3 URIs)."""

    model_config = ConfigDict(extra="ignore")

    location: str | None = Field(None, description="The archive's S3 prefix.")
    database: str | None = Field(None, description="Compressed SQL dump.")
    files: str | None = Field(None, description="Compressed tar of the tenant's files.")
    users: str | None = Field(None, description="Exported Cognito users and groups.")
    manifest: str | None = Field(None, description="What was archived, with checksums.")


class WordPressEnvironmentStatus(_Model):
    """What the operator last observed. Written only by the operator."""

    model_config = ConfigDict(extra="ignore")

    phase: Phase | None = Field(None, description="Lifecycle state (HLD 4.1).")
    observed_generation: int | None = Field(
        None, description="The spec generation this status describes."
    )
    conditions: list[Condition] = Field(
        [],
        description="One condition per resource group and a summary Ready.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )
    replicas: int | None = Field(None, description="Tasks ECS runs now.")
    ready_replicas: int | None = Field(None, description="Tasks healthy behind the ALB.")
    selector: str | None = Field(None, description="Label selector for the scale subresource.")
    url: str | None = Field(None, description="Where the tenant's WordPress answers.")
    queue_position: int | None = Field(
        None,
        ge=1,
        description="Place in the provisioning queue (1 is next) while waiting for a slot "
        "(HLD 5.3); absent otherwise.",
    )
    next_retry_at: str | None = Field(
        None,
        description="When the operator tries again after a pass that hit a transient "
        "failure (its backoff); absent while passes succeed.",
        json_schema_extra={"format": "date-time"},
    )
    resources: ResourceIds | None = Field(None, description=ResourceIds.__doc__)
    provisioning: ProvisioningTimes | None = Field(None, description=ProvisioningTimes.__doc__)
    archive: ArchiveLocations | None = Field(None, description=ArchiveLocations.__doc__)


def parse_spec(raw: dict[str, Any]) -> WordPressEnvironmentSpec:
    """The spec as the operator sees it, with the same defaults the API server applies."""
    return WordPressEnvironmentSpec.model_validate(raw)
