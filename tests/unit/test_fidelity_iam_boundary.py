"""The fidelity layer's permissions-boundary rule, on moto's in-process IAM backend."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import urlencode

import boto3
import pytest
from moto import mock_aws

from tests.platform.fidelity import Request
from tests.platform.fidelity.iam_boundary import (
    BOUNDARY_POLICY,
    CODE,
    MESSAGE,
    boundary_arn,
    refuse,
    required_boundary,
)

SIGNED = {"authorization": "AWS4-HMAC-SHA256 Credential=x/20260101/us-east-1/iam/aws4_request"}
OURS = {"Tags.member.1.Key": "app.kubernetes.io/managed-by",
        "Tags.member.1.Value": "wpenv-operator"}


@pytest.fixture
def iam(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """moto's in-process IAM (the session's platform endpoint is not used here)."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        yield boto3.client("iam", region_name="us-east-1")


def _create_role(**fields: str) -> Request:
    body = urlencode({"Action": "CreateRole", "Version": "2010-05-08",
                      "RoleName": "wpenv-acme-task", "AssumeRolePolicyDocument": "{}", **fields})
    return Request("", "CreateRole", "iam.amazonaws.com", "/", body.encode(), dict(SIGNED))


def _make_boundary(iam: object) -> str:
    document = {"Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "logs:*", "Resource": "*"}]}
    created = iam.create_policy(  # type: ignore[attr-defined]
        PolicyName=BOUNDARY_POLICY, PolicyDocument=json.dumps(document))
    return str(created["Policy"]["Arn"])


def test_nothing_is_required_until_the_account_has_the_boundary(iam: object) -> None:
    assert required_boundary() is None
    assert refuse(_create_role(**OURS)) is None


def test_an_operator_role_without_the_boundary_is_access_denied(iam: object) -> None:
    arn = _make_boundary(iam)
    assert arn == boundary_arn() == required_boundary()
    refusal = refuse(_create_role(**OURS))
    assert refusal is not None
    assert (refusal.status, refusal.code, refusal.query) == (403, CODE, True)
    assert refusal.message == MESSAGE.format(
        caller="arn:aws:iam::123456789012:user/moto",
        resource="arn:aws:iam::123456789012:role/wpenv-acme-task",
    )
    other = arn.replace(BOUNDARY_POLICY, "AdministratorAccess")
    assert refuse(_create_role(PermissionsBoundary=other, **OURS)) is not None


def test_the_boundary_or_an_untagged_role_passes(iam: object) -> None:
    arn = _make_boundary(iam)
    assert refuse(_create_role(PermissionsBoundary=arn, **OURS)) is None
    assert refuse(_create_role()) is None  # not the operator's (a test's helper role)
    unsigned = _create_role(**OURS)
    assert refuse(Request("", "CreateRole", "x", "/", unsigned.body, {})) is None
