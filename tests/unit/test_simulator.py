"""The ECS/ALB simulator against moto's in-process backends (mock_aws).

These tests exercise the simulator itself, so calling moto in-process is right here; the
operator's own tests talk HTTP to the moto server instead.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.backends import get_backend
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.ecs.models import EC2ContainerServiceBackend

from tests.platform.fidelity.security_groups import deletion_refusal, users
from tests.platform.fidelity.service_drain import creation_refusal
from tests.platform.simulator import Simulator, delay_from_env, seconds_from_env, task_ips

REGION = "us-east-1"
DRAIN = 2.0
ENI_RELEASE = 3.0


class FakeClock:
    """A clock the test moves by hand, so the delay can be checked without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    """Clients and the shared pieces each test builds its service on."""

    ecs: Any
    elbv2: Any
    subnets: list[str]
    cidrs: list[str]
    security_group: str
    target_group: str
    sim: Simulator
    clock: FakeClock

    def task_definition(self, image: str) -> str:
        """Register a one-container task definition and return its ARN."""
        response = self.ecs.register_task_definition(
            family="wp-acme",
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="256",
            memory="512",
            containerDefinitions=[
                {"name": "wordpress", "image": image, "memory": 512, "portMappings": [
                    {"containerPort": 80}]}
            ],
        )
        arn: str = response["taskDefinition"]["taskDefinitionArn"]
        return arn

    def create_service(self, task_definition: str, desired: int = 2) -> dict[str, Any]:
        """An ALB-attached Fargate service as the operator creates it."""
        service: dict[str, Any] = self.ecs.create_service(
            cluster="wpenv",
            serviceName="wp-acme",
            taskDefinition=task_definition,
            desiredCount=desired,
            launchType="FARGATE",
            loadBalancers=[
                {
                    "targetGroupArn": self.target_group,
                    "containerName": "wordpress",
                    "containerPort": 80,
                }
            ],
            networkConfiguration={
                "awsvpcConfiguration": {
                    "subnets": self.subnets,
                    "securityGroups": [self.security_group],
                }
            },
        )["service"]
        return service

    def service(self) -> dict[str, Any]:
        """describe_services for the test's service."""
        found: dict[str, Any] = self.ecs.describe_services(
            cluster="wpenv", services=["wp-acme"]
        )["services"][0]
        return found

    def health(self) -> dict[str, str]:
        """Registered targets of the target group: ip -> state."""
        descriptions = self.elbv2.describe_target_health(TargetGroupArn=self.target_group)
        return {
            d["Target"]["Id"]: d["TargetHealth"]["State"]
            for d in descriptions["TargetHealthDescriptions"]
        }


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """A VPC, two subnets, a cluster and a target group in moto, and a hooked simulator."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        ec2 = boto3.client("ec2", region_name=REGION)
        vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
        cidrs = ["10.20.1.0/24", "10.20.2.0/24"]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=f"{REGION}{az}")[
                "Subnet"
            ]["SubnetId"]
            for cidr, az in zip(cidrs, "ab", strict=True)
        ]
        sg = ec2.create_security_group(GroupName="task", Description="t", VpcId=vpc)["GroupId"]
        ecs = boto3.client("ecs", region_name=REGION)
        ecs.create_cluster(clusterName="wpenv")
        elbv2 = boto3.client("elbv2", region_name=REGION)
        tg = elbv2.create_target_group(
            Name="wp-acme", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip"
        )["TargetGroups"][0]["TargetGroupArn"]
        clock = FakeClock()
        simulator = Simulator(delay=0.0, clock=clock, drain=DRAIN, eni_release=ENI_RELEASE)
        with simulator.hooked() as sim:
            yield World(ecs, elbv2, subnets, cidrs, sg, tg, sim, clock)


def test_new_service_reaches_desired_count_with_healthy_targets(world: World) -> None:
    created = world.create_service(world.task_definition("wordpress:6.8"), desired=2)
    assert created["runningCount"] == 0
    assert created["deployments"][0]["rolloutState"] == "IN_PROGRESS"
    assert world.health() == {}

    world.sim.step()

    service = world.service()
    assert service["runningCount"] == service["desiredCount"] == 2
    assert service["pendingCount"] == 0
    [deployment] = service["deployments"]
    assert deployment["status"] == "PRIMARY"
    assert deployment["rolloutState"] == "COMPLETED"
    assert deployment["runningCount"] == 2
    assert "has reached a steady state" in service["events"][0]["message"]
    health = world.health()
    assert sorted(health.values()) == ["healthy", "healthy"]
    # One task per subnet (AZ), each address inside its subnet.
    networks = [ipaddress.ip_network(c) for c in world.cidrs]
    for ip in health:
        assert sum(ipaddress.ip_address(ip) in n for n in networks) == 1
    assert {next(n for n in networks if ipaddress.ip_address(ip) in n) for ip in health} == set(
        networks
    )


def test_scale_waits_for_delay_then_deregisters_extras(world: World) -> None:
    world.sim.delay = 2.0
    world.create_service(world.task_definition("wordpress:6.8"), desired=3)
    world.sim.step()
    assert world.service()["runningCount"] == 0  # tasks take `delay` to start
    world.clock.now += 2.0
    world.sim.step()
    assert world.service()["runningCount"] == 3
    before = set(world.health())
    assert len(before) == 3

    updated = world.ecs.update_service(cluster="wpenv", service="wp-acme", desiredCount=1)
    # moto alone would report 1 running at once; ECS still runs the 3 old tasks.
    assert updated["service"]["runningCount"] == 3
    world.clock.now += 1.0
    world.sim.step()
    assert world.service()["runningCount"] == 3
    world.clock.now += 1.0
    world.sim.step()

    service = world.service()
    assert service["runningCount"] == service["desiredCount"] == 1
    assert service["deployments"][0]["rolloutState"] == "COMPLETED"
    after = world.health()
    assert list(after.values()) == ["healthy"]
    assert set(after) < before
    gone = sorted(before - set(after))
    described = world.elbv2.describe_target_health(
        TargetGroupArn=world.target_group, Targets=[{"Id": ip, "Port": 80} for ip in gone]
    )["TargetHealthDescriptions"]
    assert {d["TargetHealth"]["State"] for d in described} == {"unused"}


def test_new_task_definition_starts_a_primary_deployment_first(world: World) -> None:
    first = world.task_definition("wordpress:6.8")
    world.create_service(first)
    world.sim.step()
    second = world.task_definition("wordpress:6.9")

    # Given as family:revision, reported as an ARN, as ECS does.
    updated = world.ecs.update_service(
        cluster="wpenv", service="wp-acme", taskDefinition="wp-acme:2"
    )["service"]

    assert updated["taskDefinition"] == second
    primary, old = updated["deployments"]
    assert (primary["status"], primary["rolloutState"]) == ("PRIMARY", "IN_PROGRESS")
    assert primary["taskDefinition"] == second
    assert (old["status"], old["taskDefinition"]) == ("ACTIVE", first)
    assert updated["runningCount"] == 2  # the old tasks serve meanwhile

    world.sim.step()

    service = world.service()
    [deployment] = service["deployments"]
    assert deployment["taskDefinition"] == second
    assert deployment["rolloutState"] == "COMPLETED"
    assert service["runningCount"] == 2
    assert sorted(world.health().values()) == ["healthy", "healthy"]


def test_force_new_deployment_makes_a_new_deployment(world: World) -> None:
    world.create_service(world.task_definition("wordpress:6.8"))
    world.sim.step()
    old_id = world.service()["deployments"][0]["id"]

    updated = world.ecs.update_service(
        cluster="wpenv", service="wp-acme", forceNewDeployment=True
    )["service"]

    assert [d["status"] for d in updated["deployments"]] == ["PRIMARY", "ACTIVE"]
    assert updated["deployments"][1]["id"] == old_id
    world.sim.step()
    [deployment] = world.service()["deployments"]
    assert deployment["id"] != old_id
    assert deployment["rolloutState"] == "COMPLETED"


def test_broken_image_fails_and_rolls_back(world: World) -> None:
    good = world.task_definition("wordpress:6.8")
    world.create_service(good)
    world.sim.step()
    targets = world.health()
    broken = world.task_definition("wordpress:broken")

    world.ecs.update_service(cluster="wpenv", service="wp-acme", taskDefinition=broken)
    world.sim.step()

    # The circuit breaker fired: the failed deployment is visible next to the rollback.
    service = world.service()
    rollback, failed = service["deployments"]
    assert failed["taskDefinition"] == broken
    assert failed["rolloutState"] == "FAILED"
    assert failed["failedTasks"] > 0
    assert (rollback["status"], rollback["taskDefinition"]) == ("PRIMARY", good)
    assert rollback["rolloutState"] == "IN_PROGRESS"
    assert service["taskDefinition"] == good
    assert service["runningCount"] == 2  # the old tasks never stopped
    assert any("deployment failed" in e["message"] for e in service["events"])

    world.sim.step()

    service = world.service()
    [deployment] = service["deployments"]
    assert (deployment["taskDefinition"], deployment["rolloutState"]) == (good, "COMPLETED")
    assert service["taskDefinition"] == good
    assert service["runningCount"] == 2
    assert world.health() == targets


def test_broken_image_on_a_new_service_stays_failed(world: World) -> None:
    world.create_service(world.task_definition("wordpress:broken"))
    world.sim.step()
    world.sim.step()

    service = world.service()
    [deployment] = service["deployments"]
    assert deployment["rolloutState"] == "FAILED"
    assert service["runningCount"] == 0
    assert world.health() == {}


def test_deleted_service_deregisters_its_targets(world: World) -> None:
    world.create_service(world.task_definition("wordpress:6.8"))
    world.sim.step()
    assert len(world.health()) == 2

    deleted = world.ecs.delete_service(cluster="wpenv", service="wp-acme", force=True)
    world.sim.step()

    assert deleted["service"]["status"] == "DRAINING"
    assert world.health() == {}  # out of the target group at once; the tasks still stop
    assert world.service()["status"] == "DRAINING"
    assert world.service()["runningCount"] == 2

    world.clock.now += DRAIN
    world.sim.step()
    assert world.service()["status"] == "INACTIVE"
    assert world.service()["runningCount"] == 0


def test_moved_load_balancer_moves_targets(world: World) -> None:
    world.create_service(world.task_definition("wordpress:6.8"))
    world.sim.step()
    vpc = world.elbv2.describe_target_groups(TargetGroupArns=[world.target_group])[
        "TargetGroups"
    ][0]["VpcId"]
    other = world.elbv2.create_target_group(
        Name="wp-acme-2", Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]

    world.ecs.update_service(
        cluster="wpenv",
        service="wp-acme",
        loadBalancers=[
            {"targetGroupArn": other, "containerName": "wordpress", "containerPort": 8080}
        ],
    )
    world.sim.step()

    assert world.health() == {}
    moved = world.elbv2.describe_target_health(TargetGroupArn=other)["TargetHealthDescriptions"]
    assert {(d["Target"]["Port"], d["TargetHealth"]["State"]) for d in moved} == {
        (8080, "healthy")
    }


def test_task_ips_are_deterministic_and_distinct(world: World) -> None:
    world.create_service(world.task_definition("wordpress:6.8"), desired=0)
    service = next(iter(_ecs_services()))
    ips = task_ips(service, 40, None)  # no EC2 backend: the fallback range
    assert ips == task_ips(service, 40, None)
    assert len(set(ips)) == 40
    assert all(ipaddress.ip_address(ip) in ipaddress.ip_network("10.255.0.0/16") for ip in ips)


def test_delay_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WPENV_SIM_DELAY_SECONDS", raising=False)
    assert delay_from_env() == 2.0
    monkeypatch.setenv("WPENV_SIM_DELAY_SECONDS", "0.25")
    assert delay_from_env() == 0.25


def _ecs_services() -> list[Any]:
    """moto's Service objects in the default account and region."""
    backend = get_backend("ecs")[DEFAULT_ACCOUNT_ID][REGION]
    return list(backend.services.values())


def test_hooks_are_removed_after_the_block() -> None:
    original = EC2ContainerServiceBackend.update_service
    with Simulator(delay=0.0).hooked():
        assert EC2ContainerServiceBackend.update_service is not original
    assert EC2ContainerServiceBackend.update_service is original


def _logging_task_definition(world: World, group: str) -> str:
    """A task definition whose container logs to `group` with awslogs (no secrets)."""
    iam = boto3.client("iam", region_name=REGION)
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
        "Action": "sts:AssumeRole"}]}
    role = iam.create_role(RoleName=f"exec-{abs(hash(group))}",
                           AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    iam.put_role_policy(RoleName=role["RoleName"], PolicyName="logs", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "logs:CreateLogStream", "Resource": "*"}]}))
    arn: str = world.ecs.register_task_definition(
        family="wp-acme", networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
        cpu="256", memory="512", executionRoleArn=role["Arn"],
        containerDefinitions=[{
            "name": "wordpress", "image": "wordpress:6.9", "memory": 512,
            "portMappings": [{"containerPort": 80}],
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": group, "awslogs-region": REGION,
                "awslogs-stream-prefix": "wordpress"}},
        }],
    )["taskDefinition"]["taskDefinitionArn"]
    return arn


def test_a_task_whose_log_group_is_missing_never_starts(world: World) -> None:
    world.create_service(_logging_task_definition(world, "/wpenv/missing"))
    world.sim.step()

    service = world.service()
    [deployment] = service["deployments"]
    assert deployment["rolloutState"] == "FAILED"
    assert service["runningCount"] == 0 and world.health() == {}
    [told] = [e["message"] for e in service["events"] if "unable to place a task" in e["message"]]
    assert "ResourceInitializationError: failed to validate logger args" in told
    assert "CloudWatch log group" in told


def test_a_revision_whose_log_group_is_missing_is_rolled_back(world: World) -> None:
    good = world.task_definition("wordpress:6.8")
    world.create_service(good)
    world.sim.step()
    targets = world.health()
    logged = _logging_task_definition(world, "/wpenv/never-made")

    world.ecs.update_service(cluster="wpenv", service="wp-acme", taskDefinition=logged)
    world.sim.step()

    service = world.service()
    rollback, failed = service["deployments"]
    assert (failed["taskDefinition"], failed["rolloutState"]) == (logged, "FAILED")
    assert (rollback["taskDefinition"], rollback["status"]) == (good, "PRIMARY")
    assert any("failed to validate logger args" in e["message"] for e in service["events"])
    world.sim.step()
    [deployment] = world.service()["deployments"]
    assert (deployment["taskDefinition"], deployment["rolloutState"]) == (good, "COMPLETED")
    assert world.health() == targets

    boto3.client("logs", region_name=REGION).create_log_group(logGroupName="/wpenv/never-made")
    world.ecs.update_service(cluster="wpenv", service="wp-acme", taskDefinition=logged)
    world.sim.step()
    [deployment] = world.service()["deployments"]
    assert (deployment["taskDefinition"], deployment["rolloutState"]) == (logged, "COMPLETED")


def _ec2() -> Any:
    return get_backend("ec2")[DEFAULT_ACCOUNT_ID][REGION]


def _ecs() -> Any:
    return get_backend("ecs")[DEFAULT_ACCOUNT_ID][REGION]


def _interfaces(world: World) -> dict[str, str]:
    """The service's task interfaces in moto's EC2: private ip -> subnet."""
    found = boto3.client("ec2", region_name=REGION).describe_network_interfaces(
        Filters=[{"Name": "group-id", "Values": [world.security_group]}])["NetworkInterfaces"]
    return {n["PrivateIpAddress"]: n["SubnetId"] for n in found}


def test_each_running_task_has_an_interface_with_the_services_groups(world: World) -> None:
    world.create_service(world.task_definition("wordpress:6.8"), desired=2)
    assert _interfaces(world) == {}  # nothing runs yet
    world.sim.step()

    interfaces = _interfaces(world)
    assert set(interfaces) == set(world.health())  # the targets are the tasks' addresses
    assert sorted(interfaces.values()) == sorted(world.subnets)  # one task per subnet
    world.sim.step()
    assert _interfaces(world) == interfaces  # nothing new for tasks that keep running


def test_a_deleted_services_group_stays_in_use_until_its_interfaces_are_released(
    world: World,
) -> None:
    world.create_service(world.task_definition("wordpress:6.8"), desired=2)
    world.sim.step()
    world.ecs.delete_service(cluster="wpenv", service="wp-acme", force=True)
    params = {"GroupId": world.security_group}

    for elapsed in (0.0, DRAIN, DRAIN + ENI_RELEASE - 0.5):  # draining, stopped, lingering
        world.clock.now = 1000.0 + elapsed
        world.sim.step()
        assert len(users(_ec2(), world.security_group)) == 2, elapsed
        refusal = deletion_refusal(_ec2(), params)
        assert refusal is not None
        assert (refusal.status, refusal.code, refusal.protocol) == (400, "DependencyViolation",
                                                                    "ec2")
        assert refusal.message == f"resource {world.security_group} has a dependent object"

    world.clock.now = 1000.0 + DRAIN + ENI_RELEASE
    world.sim.step()
    assert _interfaces(world) == {}
    assert deletion_refusal(_ec2(), params) is None
    assert world.sim.enis == {}


def test_a_scale_down_releases_the_stopped_tasks_interfaces_later(world: World) -> None:
    world.create_service(world.task_definition("wordpress:6.8"), desired=2)
    world.sim.step()
    world.ecs.update_service(cluster="wpenv", service="wp-acme", desiredCount=1)
    world.sim.step()
    assert world.service()["runningCount"] == 1
    assert len(_interfaces(world)) == 2  # the stopped task's interface lingers
    world.clock.now += ENI_RELEASE
    world.sim.step()
    assert set(_interfaces(world)) == set(world.health())
    assert len(_interfaces(world)) == 1


def test_the_name_of_a_draining_service_is_refused_until_it_is_inactive(world: World) -> None:
    task_definition = world.task_definition("wordpress:6.8")
    world.create_service(task_definition)
    world.sim.step()
    body = {"cluster": "wpenv", "serviceName": "wp-acme"}
    assert creation_refusal(_ecs(), body) is None  # ACTIVE: another rule's business
    world.ecs.delete_service(cluster="wpenv", service="wp-acme", force=True)
    world.sim.step()

    refusal = creation_refusal(_ecs(), body)
    assert refusal is not None
    assert (refusal.status, refusal.code) == (400, "InvalidParameterException")
    assert refusal.message == "Unable to Start a service that is still Draining."
    cluster_arn = world.service()["clusterArn"]
    assert creation_refusal(_ecs(), {**body, "cluster": cluster_arn}) is not None
    assert creation_refusal(_ecs(), {**body, "serviceName": "other"}) is None

    world.clock.now += DRAIN
    world.sim.step()
    assert creation_refusal(_ecs(), body) is None
    world.create_service(task_definition)  # the name is free again
    assert world.service()["status"] == "ACTIVE"


def test_deleting_a_draining_service_again_keeps_it_draining(world: World) -> None:
    world.create_service(world.task_definition("wordpress:6.8"))
    world.sim.step()
    world.ecs.delete_service(cluster="wpenv", service="wp-acme", force=True)
    world.clock.now += DRAIN / 2
    again = world.ecs.delete_service(cluster="wpenv", service="wp-acme", force=True)
    assert again["service"]["status"] == "DRAINING"
    world.clock.now += DRAIN / 2  # the drain counts from the first delete
    world.sim.step()
    assert world.service()["status"] == "INACTIVE"


def test_without_a_drain_time_a_deleted_service_is_inactive_at_once(world: World) -> None:
    world.sim.drain = 0.0
    world.create_service(world.task_definition("wordpress:6.8"))
    world.sim.step()
    deleted = world.ecs.delete_service(cluster="wpenv", service="wp-acme", force=True)
    assert deleted["service"]["status"] == "INACTIVE"


def test_lifecycle_delays_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WPENV_ECS_DRAIN_SECONDS", "WPENV_ENI_RELEASE_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    sim = Simulator(delay=0.0)
    assert (sim.drain, sim.eni_release) == (2.0, 2.0)
    monkeypatch.setenv("WPENV_ECS_DRAIN_SECONDS", "0.5")
    monkeypatch.setenv("WPENV_ENI_RELEASE_SECONDS", "0")
    sim = Simulator(delay=0.0)
    assert (sim.drain, sim.eni_release) == (0.5, 0.0)
    assert seconds_from_env("WPENV_ECS_DRAIN_SECONDS", 9.0) == 0.5
