"""Every name derived from an accepted manifest is one AWS and MySQL accept.

The CRD accepts a tenantId that is a DNS label of at most 32 characters and a metadata.name
of at most MAX_NAME_LENGTH; `plan.names_for` and `plan.tags_for` derive every AWS and
MySQL name from them. These tests walk the edges of that space (and many random ids) and
check each derived name against the limits AWS documents for it, so no manifest the API
server accepts can make a name AWS refuses.
"""

from __future__ import annotations

import random
import re

import pytest

from tests.platform.fidelity.cognito import domain_refusal
from wpenv.api.models import DNS_LABEL, MAX_NAME_LENGTH
from wpenv.plan import TAG_ENVIRONMENT, names_for, sql_identifier, tags_for
from wpenv.settings import Settings

# name -> (pattern, maximum length), each from the API reference of the call that takes it.
LIMITS: dict[str, tuple[str, int]] = {
    # IAM CreateRole, RoleName: [\w+=,.@-]+, 1-64.
    "task_role": (r"[\w+=,.@-]+", 64),
    "execution_role": (r"[\w+=,.@-]+", 64),
    # ELBv2 CreateTargetGroup, Name: at most 32 alphanumerics or hyphens, no hyphen at
    # either end.
    "target_group": (r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?", 32),
    # Secrets Manager CreateSecret, Name: 1-512 of letters, digits and /_+=.@-.
    "db_secret": (r"[A-Za-z0-9/_+=.@-]+", 512),
    "client_secret": (r"[A-Za-z0-9/_+=.@-]+", 512),
    # CloudWatch Logs CreateLogGroup, logGroupName: [\.\-_/#A-Za-z0-9]+, 1-512.
    "log_group": (r"[.\-_/#A-Za-z0-9]+", 512),
    # ECS: service names and task definition families, up to 255 letters, digits,
    # hyphens and underscores.
    "service": (r"[A-Za-z0-9_-]+", 255),
    "task_family": (r"[A-Za-z0-9_-]+", 255),
    # EC2 CreateSecurityGroup, GroupName: up to 255 characters (and not starting sg-).
    "security_group": (r"(?!sg-)[A-Za-z0-9 ._\-:/()#,@\[\]+=&;{}!$*]+", 255),
    # Cognito CreateUserPool, PoolName: [\w\s+=,.@-]+, 1-128.
    "user_pool": (r"[\w\s+=,.@-]+", 128),
    # EFS CreateAccessPoint, RootDirectory.Path: at most 100 characters.
    "access_point_root": (r"/[A-Za-z0-9/_.-]+", 100),
    # MySQL 8: user names at most 32 characters, database names at most 64 (and the
    # operator quotes only identifiers `plan.sql_identifier` accepts).
    "database_user": (r"[A-Za-z0-9_]+", 26),  # room for the rotation's "_clone"
    "database": (r"[A-Za-z0-9_]+", 64),
}

EDGES = [
    "a", "9", "a" * 32, "0" * 32, "a-b", "a" + "-" * 30 + "b", "a" * 31 + "9",
    "internal-lb", "sg-123", "wp", "x-" * 15 + "xy", "1-2-3", "aws", "select",
]


def _random_tenants(count: int) -> list[str]:
    """DNS labels of every length 1-32, drawn with a fixed seed."""
    rng = random.Random(14)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-"
    found: list[str] = []
    while len(found) < count:
        length = rng.randint(1, 32)
        tenant = "".join(rng.choice(alphabet) for _ in range(length))
        if re.fullmatch(DNS_LABEL, tenant):
            found.append(tenant)
    return found


TENANTS = EDGES + _random_tenants(1000)


def test_the_tenants_here_are_exactly_the_accepted_ones() -> None:
    for tenant in TENANTS:
        assert re.fullmatch(DNS_LABEL, tenant) and 1 <= len(tenant) <= 32, tenant


@pytest.mark.parametrize("kind", sorted(LIMITS))
def test_every_derived_name_fits_what_aws_accepts(kind: str) -> None:
    pattern, limit = LIMITS[kind]
    for tenant in TENANTS:
        value = getattr(names_for("ns", "name", tenant), kind)
        assert re.fullmatch(pattern, value), (kind, tenant, value)
        assert len(value) <= limit, (kind, tenant, value)


def test_database_names_are_safe_sql_identifiers() -> None:
    for tenant in TENANTS:
        names = names_for("ns", "name", tenant)
        assert sql_identifier(names.database) == f"`{names.database}`"
        assert sql_identifier(names.database_user) == f"`{names.database_user}`"


def test_the_cognito_domain_prefix_is_one_cognito_accepts() -> None:
    for tenant in TENANTS:
        prefix = names_for("a" * 63, "b" * MAX_NAME_LENGTH, tenant).user_pool_domain
        assert domain_refusal(prefix) is None, (tenant, prefix)


def test_truncated_names_stay_distinct() -> None:
    """Names cut to fit keep a hash of the whole id, so two tenants never share one."""
    for kind in ("target_group", "database_user", "task_role", "execution_role", "database"):
        values = {getattr(names_for("ns", "n", t), kind) for t in set(TENANTS)}
        assert len(values) == len(set(TENANTS)), kind


def test_the_environment_tag_fits_for_the_longest_accepted_names() -> None:
    """AWS tag values hold at most 256 characters: a 63-character namespace and the longest
    metadata.name the CRD accepts make exactly that."""
    tags = tags_for("n" * 63, "m" * MAX_NAME_LENGTH, "a" * 32, Settings())
    assert len(tags[TAG_ENVIRONMENT]) == 256
    assert all(len(value) <= 256 for value in tags.values())
    assert all(re.fullmatch(r"[\w.:/=+@ -]*", value) for value in tags.values())

