"""The platform's AWS component: up() serves moto + simulator with the shared infrastructure.

It runs its own moto server on a non-default port in a scratch directory, so it can run
next to a developer's platform (port 25000) and the session platform (35000). Everything is
checked with plain boto3 over HTTP, as the operator sees it.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.platform import aws, procs

pytestmark = pytest.mark.e2e

PORT = 25900
MYSQL = {
    "MYSQL_HOST": "127.0.0.1",
    "MYSQL_TCP_PORT": "23999",
    "MYSQL_USER": "wpenv_admin",
    "MYSQL_PWD": "not-a-real-password",
}
EXPORTED = {
    "AWS_ENDPOINT_URL",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "WPENV_REGION",
    "WPENV_CLUSTER_NAME",
    "WPENV_VPC_ID",
    "WPENV_PRIVATE_SUBNET_IDS",
    "WPENV_ALB_SECURITY_GROUP_ID",
    "WPENV_LOAD_BALANCER_ARNS",
    "WPENV_FILE_SYSTEM_ID",
    "WPENV_ARCHIVE_BUCKET",
    "WPENV_DB_MASTER_SECRET_ARN",
    "WPENV_DB_HOST",
    "WPENV_DB_PORT",
    "WPENV_EFS_MOUNT_PATH",
    "WPENV_ROLE_PERMISSIONS_BOUNDARY_ARN",
    "WPENV_DB_ROTATION_LAMBDA_ARN",
    "WPENV_DB_ROTATION_MASTER_SECRET_ARN",
    "WPENV_CA_BUNDLE",
    "WPENV_ALB_RESOLVE",
}


def motoserver_pids(port: int) -> list[int]:
    """Pids of motoserver processes serving ``port`` (whoever started them)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if aws.MODULE.encode() in argv and str(port).encode() in argv:
            pids.append(int(proc.name))
    return pids


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A scratch state directory and port (not the session platform's); always torn down."""
    monkeypatch.setenv(aws.PORT_ENV, str(PORT))
    monkeypatch.delenv("WPENV_SIM_DELAY_SECONDS", raising=False)  # the default delay
    try:
        yield tmp_path
    finally:
        aws.down(tmp_path)


def client_factory(env: dict[str, str]) -> Callable[[str], Any]:
    """Plain boto3 clients configured only from what up() exported."""

    def client(service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=env["AWS_ENDPOINT_URL"],
            region_name=env["AWS_DEFAULT_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )

    return client


def inventory(client: Callable[[str], Any], env: dict[str, str]) -> dict[str, object]:
    """Ids of everything the bootstrap owns, to compare two up() calls."""
    ec2, elbv2, efs = client("ec2"), client("elbv2"), client("efs")
    vpc_filter = [{"Name": "vpc-id", "Values": [env["WPENV_VPC_ID"]]}]
    shared = [{"Name": "tag:wpenv.bbws.io/shared", "Values": ["true"]}]
    secrets = client("secretsmanager")
    return {
        "vpcs": sorted(v["VpcId"] for v in ec2.describe_vpcs(Filters=shared)["Vpcs"]),
        "subnets": sorted(
            s["SubnetId"] for s in ec2.describe_subnets(Filters=vpc_filter)["Subnets"]
        ),
        "security_groups": sorted(
            (g["GroupName"], g["GroupId"], json.dumps(g["IpPermissions"], sort_keys=True))
            for g in ec2.describe_security_groups(Filters=vpc_filter)["SecurityGroups"]
        ),
        "clusters": client("ecs").list_clusters()["clusterArns"],
        "file_systems": sorted(
            f["FileSystemId"] for f in efs.describe_file_systems()["FileSystems"]
        ),
        "mount_targets": sorted(
            m["MountTargetId"]
            for m in efs.describe_mount_targets(FileSystemId=env["WPENV_FILE_SYSTEM_ID"])[
                "MountTargets"
            ]
        ),
        "load_balancers": sorted(
            lb["LoadBalancerArn"] for lb in elbv2.describe_load_balancers()["LoadBalancers"]
        ),
        "listeners": sorted(
            (listener["ListenerArn"], json.dumps(listener["DefaultActions"], sort_keys=True))
            for lb in elbv2.describe_load_balancers()["LoadBalancers"]
            for listener in elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])[
                "Listeners"
            ]
        ),
        "certificates": sorted(
            c["CertificateArn"]
            for c in client("acm").list_certificates(
                Includes={"keyTypes": ["EC_prime256v1", "RSA_2048"]}
            )["CertificateSummaryList"]
        ),
        "buckets": sorted(b["Name"] for b in client("s3").list_buckets()["Buckets"]),
        "secrets": sorted(s["ARN"] for s in secrets.list_secrets()["SecretList"]),
        "secret_versions": len(
            secrets.list_secret_version_ids(SecretId=env["WPENV_DB_MASTER_SECRET_ARN"])[
                "Versions"
            ]
        ),
    }


def test_up_bootstraps_is_idempotent_simulates_and_down_cleans_up(scratch: Path) -> None:
    """One server life: cold up, checks over HTTP, warm up, a service rolls out, down."""
    started = time.monotonic()
    env = aws.up(scratch, dict(MYSQL))
    cold = time.monotonic() - started
    print(f"cold up(): {cold:.2f} s")

    assert set(env) == EXPORTED
    assert env["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{PORT}"
    assert env["WPENV_EFS_MOUNT_PATH"] == str(scratch / "efs")
    assert (scratch / "efs").is_dir()
    assert (scratch / "aws" / "moto.pid").is_file()
    assert (scratch / "aws" / "moto.log").is_file()
    [server_pid] = motoserver_pids(PORT)
    client = client_factory(env)

    # The shared infrastructure, as the operator will look it up.
    ec2 = client("ec2")
    [vpc] = ec2.describe_vpcs(VpcIds=[env["WPENV_VPC_ID"]])["Vpcs"]
    assert vpc["CidrBlock"] == "10.20.0.0/16"
    assert {"Key": "wpenv.bbws.io/shared", "Value": "true"} in vpc["Tags"]
    subnet_ids = env["WPENV_PRIVATE_SUBNET_IDS"].split(",")
    subnets = ec2.describe_subnets(SubnetIds=subnet_ids)["Subnets"]
    assert len({s["AvailabilityZone"] for s in subnets}) == 2
    assert {s["VpcId"] for s in subnets} == {env["WPENV_VPC_ID"]}
    [alb_sg] = ec2.describe_security_groups(GroupIds=[env["WPENV_ALB_SECURITY_GROUP_ID"]])[
        "SecurityGroups"
    ]
    assert alb_sg["VpcId"] == env["WPENV_VPC_ID"]

    ecs = client("ecs")
    [cluster] = ecs.describe_clusters(clusters=[env["WPENV_CLUSTER_NAME"]])["clusters"]
    assert cluster["status"] == "ACTIVE"

    efs = client("efs")
    [file_system] = efs.describe_file_systems(FileSystemId=env["WPENV_FILE_SYSTEM_ID"])[
        "FileSystems"
    ]
    assert file_system["LifeCycleState"] == "available"
    mount_targets = efs.describe_mount_targets(FileSystemId=env["WPENV_FILE_SYSTEM_ID"])
    assert sorted(m["SubnetId"] for m in mount_targets["MountTargets"]) == sorted(subnet_ids)

    # The load balancer pool: at least two, each with one HTTPS listener (TLS 1.2+, an ACM
    # certificate for its own name, 404 for unmatched paths) and HTTP redirecting to it.
    elbv2 = client("elbv2")
    pool = env["WPENV_LOAD_BALANCER_ARNS"].split(",")
    assert len(pool) >= 2
    balancers = elbv2.describe_load_balancers(LoadBalancerArns=pool)["LoadBalancers"]
    assert [b["LoadBalancerName"] for b in balancers] == ["wpenv-internal-1", "wpenv-internal-2"]
    for alb in balancers:
        _check_load_balancer(client, alb)

    client("s3").head_bucket(Bucket=env["WPENV_ARCHIVE_BUCKET"])
    secret = client("secretsmanager").get_secret_value(SecretId=env["WPENV_DB_MASTER_SECRET_ARN"])
    # What RDS keeps in a managed master user secret: the login, nothing else.
    assert json.loads(secret["SecretString"]) == {
        "username": "wpenv_admin",
        "password": "not-a-real-password",
    }
    assert (env["WPENV_DB_HOST"], env["WPENV_DB_PORT"]) == ("127.0.0.1", "23999")
    # The alternating-users rotation's superuser secret: a full MySQL secret on that host.
    rotation_master = client("secretsmanager").get_secret_value(
        SecretId=env["WPENV_DB_ROTATION_MASTER_SECRET_ARN"])
    assert json.loads(rotation_master["SecretString"]) == {
        "engine": "mysql", "host": "127.0.0.1", "port": 23999,
        "username": "wpenv_admin", "password": "not-a-real-password",
    }
    before = inventory(client, env)

    # A second up() reuses the server and creates nothing.
    started = time.monotonic()
    again = aws.up(scratch, dict(MYSQL))
    warm = time.monotonic() - started
    print(f"warm up(): {warm:.2f} s")
    assert again == env
    assert motoserver_pids(PORT) == [server_pid]
    assert inventory(client, env) == before
    assert warm < 5.0

    # An ECS service created over HTTP runs after the simulator's delay, behind the ALB.
    target_group = elbv2.create_target_group(
        Name="wp-e2e", Protocol="HTTP", Port=80, VpcId=env["WPENV_VPC_ID"], TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]
    task_definition = ecs.register_task_definition(
        family="wp-e2e",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[{"name": "wordpress", "image": "wordpress:6.8", "memory": 512}],
    )["taskDefinition"]["taskDefinitionArn"]
    created = ecs.create_service(
        cluster=env["WPENV_CLUSTER_NAME"],
        serviceName="wp-e2e",
        taskDefinition=task_definition,
        desiredCount=2,
        launchType="FARGATE",
        loadBalancers=[
            {"targetGroupArn": target_group, "containerName": "wordpress", "containerPort": 80}
        ],
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": subnet_ids,
                "securityGroups": [env["WPENV_ALB_SECURITY_GROUP_ID"]],
            }
        },
    )["service"]
    assert created["runningCount"] == 0
    created_at = time.monotonic()
    deadline = created_at + 15.0
    while True:
        [service] = ecs.describe_services(cluster=env["WPENV_CLUSTER_NAME"], services=["wp-e2e"])[
            "services"
        ]
        if service["runningCount"] == service["desiredCount"]:
            break
        assert time.monotonic() < deadline, f"service never ran: {service}"
        time.sleep(0.2)
    print(f"service running after {time.monotonic() - created_at:.2f} s")
    assert service["deployments"][0]["rolloutState"] == "COMPLETED"
    health = elbv2.describe_target_health(TargetGroupArn=target_group)[
        "TargetHealthDescriptions"
    ]
    assert [h["TargetHealth"]["State"] for h in health] == ["healthy", "healthy"]

    aws.down(scratch)
    assert motoserver_pids(PORT) == []
    assert not procs.port_open("127.0.0.1", PORT)
    assert not (scratch / "aws").exists()
    assert not (scratch / "efs").exists()
    aws.down(scratch)  # down on nothing is fine


def test_up_fails_clearly_when_the_port_is_taken(scratch: Path) -> None:
    """Someone else on the port: up() must not adopt it nor leave a process behind."""
    with socket.socket() as blocker:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", PORT))
        blocker.listen()
        with pytest.raises(procs.StartupError, match="already in use"):
            aws.up(scratch, {})
    assert motoserver_pids(PORT) == []


def test_up_restarts_a_server_that_died(scratch: Path) -> None:
    """A crashed server is replaced, and the fresh moto gets the infrastructure again."""
    env = aws.up(scratch, {})
    [pid] = motoserver_pids(PORT)
    os.kill(pid, 9)
    procs.wait_for(lambda: not procs.is_alive(pid), what="kill", timeout=10)

    again = aws.up(scratch, {})

    assert motoserver_pids(PORT) not in ([], [pid])
    assert again["AWS_ENDPOINT_URL"] == env["AWS_ENDPOINT_URL"]
    client_factory(again)("ec2").describe_vpcs(VpcIds=[again["WPENV_VPC_ID"]])


def _check_load_balancer(client: Any, alb: dict[str, Any]) -> None:
    """One ALB of the pool: internal, HTTPS on 443 with its own certificate, 80 redirecting."""
    assert alb["Scheme"] == "internal"
    listeners = {
        listener["Port"]: listener
        for listener in client("elbv2").describe_listeners(
            LoadBalancerArn=alb["LoadBalancerArn"])["Listeners"]
    }
    assert sorted(listeners) == [80, 443]
    https = listeners[443]
    assert https["Protocol"] == "HTTPS"
    assert https["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    [certificate] = https["Certificates"]
    described = client("acm").describe_certificate(
        CertificateArn=certificate["CertificateArn"]
    )["Certificate"]
    assert described["Status"] == "ISSUED"
    assert described["DomainName"] == alb["DNSName"]
    [action] = https["DefaultActions"]
    assert action["Type"] == "fixed-response"
    assert action["FixedResponseConfig"]["StatusCode"] == "404"
    [action] = listeners[80]["DefaultActions"]
    assert action["Type"] == "redirect"
    redirect = action["RedirectConfig"]
    assert (redirect["Protocol"], redirect["Port"], redirect["StatusCode"]) == (
        "HTTPS", "443", "HTTP_301"
    )
