"""Throttling and server errors from the platform's AWS, through real boto3 calls.

The faults are switched at run time on the session's platform (``/wpenv/faults/aws``) and
reset after each test, so the rest of the suite runs with the start-up settings (rate 0,
AWS's published rate limits on).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.integration.conftest import MakeCtx, roll_back_settled
from tests.integration.test_engine import leftovers
from tests.platform.chaos import aws_fault_state, reset_aws_faults, set_aws_faults
from tests.platform.journal import read_journal
from wpenv import engine

pytestmark = pytest.mark.e2e

ONE_ATTEMPT = Config(retries={"mode": "standard", "total_max_attempts": 1})
# The operator's retry policy (wpenv/aws.py).
OPERATOR_RETRIES = Config(retries={"mode": "standard", "max_attempts": 6})

# service -> a harmless read, and the code its throttling error has
READS: dict[str, tuple[Callable[[Any], Any], str, int]] = {
    "ec2": (lambda c: c.describe_vpcs(), "RequestLimitExceeded", 503),
    "ecs": (lambda c: c.list_clusters(), "ThrottlingException", 400),
    "elbv2": (lambda c: c.describe_load_balancers(), "ThrottlingException", 400),
    "iam": (lambda c: c.list_roles(), "Throttling", 400),
    "sts": (lambda c: c.get_caller_identity(), "Throttling", 400),
    "cognito-idp": (lambda c: c.list_user_pools(MaxResults=5), "TooManyRequestsException", 400),
    "efs": (lambda c: c.describe_file_systems(), "ThrottlingException", 429),
    "secretsmanager": (lambda c: c.list_secrets(), "ThrottlingException", 400),
    "logs": (lambda c: c.describe_log_groups(), "ThrottlingException", 400),
    "application-autoscaling": (
        lambda c: c.describe_scalable_targets(ServiceNamespace="ecs"), "ThrottlingException", 400),
    "resourcegroupstaggingapi": (lambda c: c.get_resources(), "ThrottledException", 400),
}



def code_and_status(read: Callable[[], Any]) -> tuple[str, int]:
    with pytest.raises(ClientError) as caught:
        read()
    response = caught.value.response
    return str(response["Error"]["Code"]), int(response["ResponseMetadata"]["HTTPStatusCode"])


@pytest.mark.parametrize("service", sorted(READS))
def test_every_protocol_answers_the_services_throttling_error(endpoint: str, service: str) -> None:
    read, throttling, status = READS[service]
    client = boto3.client(service, config=ONE_ATTEMPT)
    set_aws_faults(endpoint, rate=1.0, codes=["ThrottlingException"])
    assert code_and_status(lambda: read(client)) == (throttling, status)
    set_aws_faults(endpoint, codes=["InternalFailure"])
    assert code_and_status(lambda: read(client)) == ("InternalFailure", 500)
    set_aws_faults(endpoint, codes=["ServiceUnavailable"])
    assert code_and_status(lambda: read(client)) == ("ServiceUnavailable", 503)
    set_aws_faults(endpoint, rate=0.0)
    read(client)


def test_s3_and_the_platforms_endpoints_are_left_alone(endpoint: str) -> None:
    set_aws_faults(endpoint, rate=1.0, codes=["InternalFailure"])
    boto3.client("s3", config=ONE_ATTEMPT).list_buckets()
    assert aws_fault_state(endpoint)["rate"] == 1.0
    assert read_journal(endpoint, time.time() - 60) is not None


def test_the_journal_records_the_injected_status(endpoint: str) -> None:
    sts = boto3.client("sts", config=ONE_ATTEMPT)
    since = time.time()
    set_aws_faults(endpoint, rate=1.0, codes=["ServiceUnavailable"])
    code_and_status(sts.get_caller_identity)
    set_aws_faults(endpoint, rate=0.0)
    sts.get_caller_identity()
    statuses = [e.status for e in read_journal(endpoint, since) if e.action == "GetCallerIdentity"]
    assert statuses == [503, 200]


def test_a_call_over_a_tiny_bucket_is_throttled(endpoint: str) -> None:
    set_aws_faults(endpoint, rate_limits="off,ecs:ListClusters=2/0,ec2:DescribeVpcs=1/0")
    ecs, ec2 = boto3.client("ecs", config=ONE_ATTEMPT), boto3.client("ec2", config=ONE_ATTEMPT)
    ecs.list_clusters()
    ecs.list_clusters()
    assert code_and_status(ecs.list_clusters) == ("ThrottlingException", 400)
    ecs.describe_clusters()  # another action: another bucket
    ec2.describe_vpcs()
    assert code_and_status(ec2.describe_vpcs) == ("RequestLimitExceeded", 503)
    throttled = aws_fault_state(endpoint)["injected"]
    assert throttled == {"throttled ecs:ListClusters": 1, "throttled ec2:DescribeVpcs": 1}


def test_the_operators_retries_ride_out_a_slowly_refilling_bucket(endpoint: str) -> None:
    set_aws_faults(endpoint, rate_limits="off,ecs:ListClusters=1/2")
    ecs = boto3.client("ecs", config=OPERATOR_RETRIES)
    for _ in range(5):
        ecs.list_clusters()
    assert aws_fault_state(endpoint)["injected"]["throttled ecs:ListClusters"] >= 1


def test_awss_published_rates_are_on_by_default(endpoint: str) -> None:
    limits = {(lim["service"], lim["name"]): (lim["capacity"], lim["refill"])
              for lim in aws_fault_state(endpoint)["limits"]}
    assert limits[("ecs", "ServiceModify")] == (50, 5)
    assert limits[("ec2", "Mutating")] == (50, 5)
    assert limits[("elasticloadbalancing", "Account")] == (40, 10)
    assert limits[("cognito-idp", "UserPoolResourceReadPerPool")] == (5, 5)
    cognito = boto3.client("cognito-idp", config=ONE_ATTEMPT)
    pool = cognito.create_user_pool(PoolName=f"chaos-{uuid.uuid4().hex[:8]}")["UserPool"]["Id"]

    def list_groups(_: int) -> str:
        try:
            cognito.list_groups(UserPoolId=pool)
        except ClientError as error:
            return str(error.response["Error"]["Code"])
        return "ok"

    try:
        with ThreadPoolExecutor(max_workers=20) as threads:  # at once: one pool, 5 a second
            codes = list(threads.map(list_groups, range(40)))
        assert codes.count("ok") >= 5
        assert "TooManyRequestsException" in codes
    finally:
        cognito.delete_user_pool(UserPoolId=pool)


def test_an_operator_pass_converges_with_a_third_of_the_calls_failing(
    make_ctx: MakeCtx, endpoint: str
) -> None:
    ctx = make_ctx()
    resources = engine.default_resources()
    since = time.time()
    set_aws_faults(endpoint, rate=0.3, seed=20261201)
    try:
        outcome = engine.converge(ctx, resources)
        deadline = time.monotonic() + 300
        while not (outcome.ready or outcome.failure) and time.monotonic() < deadline:
            time.sleep(0.5)
            outcome = engine.converge(ctx, resources)
        injected = aws_fault_state(endpoint)["injected"]
    finally:
        reset_aws_faults(endpoint)
    try:
        assert outcome.failure is None, outcome.failure
        assert outcome.ready, outcome.conditions
        assert {"fault ThrottlingException", "fault InternalFailure",
                "fault ServiceUnavailable"} <= set(injected), injected
        statuses = {entry.status for entry in read_journal(endpoint, since)}
        assert {500, 503} <= statuses
    finally:
        assert roll_back_settled(ctx, resources)
    assert leftovers(ctx) == []
