"""IAM's propagation delay in the fidelity layer, on moto's in-process IAM backend."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import boto3
import pytest
from moto import mock_aws
from moto.core.utils import utcnow

from tests.platform.fidelity import Request
from tests.platform.fidelity.iam_propagation import (
    MESSAGE,
    TARGET,
    propagation_seconds,
    refuse,
    registration_refusal,
)

TRUST = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
    "Action": "sts:AssumeRole"}]}


@pytest.fixture
def role_arn(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A role made just now in moto's in-process IAM."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    # The session's platform may have exported its endpoint; these calls stay in-process.
    with mock_aws():
        iam = boto3.client("iam", region_name="us-east-1")
        yield str(iam.create_role(RoleName="wpenv-acme-task", Path="/wpenv/",
                                  AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"])


def test_a_new_role_is_refused_until_it_propagated(role_arn: str) -> None:
    now = utcnow()
    refusal = registration_refusal({"family": "f", "taskRoleArn": role_arn}, now, 2.0)
    assert refusal is not None
    assert (refusal.status, refusal.code) == (400, "ClientException")
    assert refusal.message == MESSAGE.format(arn=role_arn)
    assert registration_refusal({"executionRoleArn": role_arn}, now, 2.0) is not None
    later = now + timedelta(seconds=2.5)
    assert registration_refusal({"taskRoleArn": role_arn}, later, 2.0) is None
    assert registration_refusal({"taskRoleArn": role_arn}, now, 0) is None  # switched off


def test_unknown_roles_and_other_requests_pass(role_arn: str) -> None:
    now = utcnow()
    unknown = role_arn.replace("wpenv-acme-task", "nobody")
    assert registration_refusal({"taskRoleArn": unknown}, now, 2.0) is None
    assert registration_refusal({"taskRoleArn": "not-an-arn"}, now, 2.0) is None
    body = json.dumps({"family": "f", "taskRoleArn": role_arn}).encode()
    other = Request("AmazonEC2ContainerServiceV20141113.CreateService", "CreateService",
                    "localhost", "/", body, {})
    assert refuse(other) is None
    assert refuse(Request(TARGET, "RegisterTaskDefinition", "localhost", "/", body, {}))


def test_the_delay_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WPENV_IAM_PROPAGATION_SECONDS", raising=False)
    assert propagation_seconds() == 2.0
    monkeypatch.setenv("WPENV_IAM_PROPAGATION_SECONDS", "0.5")
    assert propagation_seconds() == 0.5
