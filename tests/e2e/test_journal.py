"""The platform moto server's request journal, over HTTP, as benchmarks and tests read it."""

from __future__ import annotations

import time
import uuid

import boto3
import pytest

from tests.platform.journal import clear_journal, matching, read_journal, reads, writes

pytestmark = pytest.mark.e2e


def test_the_journal_records_a_describe_and_a_write_with_identifiers(
    platform: dict[str, str],
) -> None:
    endpoint = platform["AWS_ENDPOINT_URL"]
    cluster = platform["WPENV_CLUSTER_NAME"]
    name = f"journal-{uuid.uuid4().hex[:8]}"
    ecs, iam = boto3.client("ecs"), boto3.client("iam")
    since = time.time()

    ecs.describe_services(cluster=cluster, services=[name])  # a JSON-protocol read
    iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}")  # a query-protocol write
    try:
        entries = read_journal(endpoint, since)
        [describe] = matching(reads(entries), service="ecs", naming=name)
        assert describe.action == "DescribeServices" and describe.status == 200
        assert describe.ids == {"cluster": cluster, "services": name}
        assert since <= describe.time <= time.time()
        [create] = matching(writes(entries), service="iam", naming=name)
        assert (create.action, create.ids, create.status) == ("CreateRole", {"RoleName": name}, 200)
        assert create.time >= describe.time

        later = read_journal(endpoint, create.time + 1e-6)
        assert not matching(later, naming=name)
    finally:
        iam.delete_role(RoleName=name)


def test_clearing_the_journal(platform: dict[str, str]) -> None:
    endpoint = platform["AWS_ENDPOINT_URL"]
    boto3.client("sts").get_caller_identity()
    assert read_journal(endpoint)
    assert clear_journal(endpoint) >= 1
    assert not [e for e in read_journal(endpoint) if e.action == "GetCallerIdentity"]
