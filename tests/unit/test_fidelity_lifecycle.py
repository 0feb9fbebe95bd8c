"""The lifecycle rules of the fidelity layer as requests reach them, on moto in-process.

Secret names stay reserved while the secret is scheduled for deletion; the rules for
security groups in use and services that drain read what the simulator leaves in moto's
backends (their timing is tested in test_simulator.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.backends import get_backend
from moto.core.models import DEFAULT_ACCOUNT_ID

from tests.platform.fidelity import (
    RULES,
    Request,
    scope,
    secret_names,
    security_groups,
    service_drain,
)

REGION = "eu-west-1"
AUTH = (f"AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/{{service}}/aws4_request, "
        "SignedHeaders=host, Signature=x")
ECS = "AmazonEC2ContainerServiceV20141113."


def _json(target: str, body: dict[str, Any], service: str) -> Request:
    return Request(target, target.rpartition(".")[2], "localhost", "/",
                   json.dumps(body).encode(), {"authorization": AUTH.format(service=service)})


def _query(action: str, params: dict[str, str]) -> Request:
    body = urlencode({"Action": action, "Version": "2016-11-15", **params}).encode()
    return Request("", action, "localhost", "/", body,
                   {"authorization": AUTH.format(service="ec2")})


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto in this process (the session's platform may have exported its endpoint)."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.delenv("MOTO_ACCOUNT_ID", raising=False)
    with mock_aws():
        yield


def test_the_rules_are_installed() -> None:
    assert {secret_names, security_groups, service_drain} <= set(RULES)


def test_the_scope_is_the_signed_region_and_moto_s_account() -> None:
    request = _json("secretsmanager.CreateSecret", {}, "secretsmanager")
    assert (scope.account_of(request), scope.region_of(request)) == (DEFAULT_ACCOUNT_ID, REGION)
    unsigned = Request("", "", "localhost", "/", b"", {"x-moto-account-id": "111122223333"})
    assert (scope.account_of(unsigned), scope.region_of(unsigned)) == ("111122223333",
                                                                       "us-east-1")


@pytest.mark.usefixtures("aws")
def test_a_name_scheduled_for_deletion_is_reserved_until_restored_or_forced() -> None:
    sm = boto3.client("secretsmanager", region_name=REGION)
    arn = sm.create_secret(Name="wpenv/acme/database", SecretString="{}")["ARN"]
    create = _json("secretsmanager.CreateSecret", {"Name": "wpenv/acme/database"},
                   "secretsmanager")
    assert secret_names.refuse(create) is None  # it exists: moto's ResourceExists is right

    sm.delete_secret(SecretId=arn, RecoveryWindowInDays=7)
    refusal = secret_names.refuse(create)
    assert refusal is not None
    assert (refusal.status, refusal.code, refusal.protocol) == (400, "InvalidRequestException",
                                                                "")
    assert refusal.message == ("You can't create this secret because a secret with this name "
                               "is already scheduled for deletion.")
    other = _json("secretsmanager.CreateSecret", {"Name": "wpenv/other/database"},
                  "secretsmanager")
    assert secret_names.refuse(other) is None
    describe = _json("secretsmanager.DescribeSecret", {"SecretId": arn}, "secretsmanager")
    assert secret_names.refuse(describe) is None

    sm.restore_secret(SecretId=arn)
    assert secret_names.refuse(create) is None
    sm.delete_secret(SecretId=arn, RecoveryWindowInDays=7)
    sm.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    assert secret_names.refuse(create) is None  # a forced delete frees the name


@pytest.mark.usefixtures("aws")
def test_a_group_a_network_interface_uses_is_refused_by_id_and_by_name() -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.30.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="wpenv-acme", Description="d",
                                      VpcId=vpc)["GroupId"]
    idle = ec2.create_security_group(GroupName="idle", Description="d", VpcId=vpc)["GroupId"]
    eni = ec2.create_network_interface(SubnetId=subnet, Groups=[group])["NetworkInterface"]

    refusal = security_groups.refuse(_query("DeleteSecurityGroup", {"GroupId": group}))
    assert refusal is not None
    assert (refusal.status, refusal.code, refusal.protocol) == (400, "DependencyViolation",
                                                                "ec2")
    assert refusal.message == f"resource {group} has a dependent object"
    assert security_groups.refuse(_query("DeleteSecurityGroup", {"GroupName": "wpenv-acme"}))
    assert security_groups.refuse(_query("DeleteSecurityGroup", {"GroupId": idle})) is None
    assert security_groups.refuse(_query("DescribeSecurityGroups", {"GroupId": group})) is None
    assert security_groups.users(get_backend("ec2")[DEFAULT_ACCOUNT_ID][REGION], group) == [
        eni["NetworkInterfaceId"]]

    ec2.delete_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"])
    assert security_groups.refuse(_query("DeleteSecurityGroup", {"GroupId": group})) is None
    ec2.delete_security_group(GroupId=group)
    with pytest.raises(ClientError):  # an unknown group: moto's own NotFound answers
        ec2.delete_security_group(GroupId=group)
    assert security_groups.refuse(_query("DeleteSecurityGroup", {"GroupId": group})) is None


@pytest.mark.usefixtures("aws")
def test_create_service_is_refused_only_while_the_name_drains() -> None:
    ecs = boto3.client("ecs", region_name=REGION)
    ecs.create_cluster(clusterName="wpenv")
    ecs.create_service(cluster="wpenv", serviceName="wpenv-acme", desiredCount=0)
    create = _json(f"{ECS}CreateService", {"cluster": "wpenv", "serviceName": "wpenv-acme"},
                   "ecs")
    assert service_drain.refuse(create) is None
    backend = get_backend("ecs")[DEFAULT_ACCOUNT_ID][REGION]
    backend.services["wpenv:wpenv-acme"].status = "DRAINING"  # what the simulator does
    refusal = service_drain.refuse(create)
    assert refusal is not None and refusal.code == "InvalidParameterException"
    assert refusal.message == "Unable to Start a service that is still Draining."
    assert service_drain.refuse(_json(f"{ECS}DescribeServices", {"cluster": "wpenv"},
                                      "ecs")) is None
    backend.services["wpenv:wpenv-acme"].status = "INACTIVE"
    assert service_drain.refuse(create) is None
