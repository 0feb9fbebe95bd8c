"""The service's desired shape and rollout reading, without AWS (target health: moto in-process)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.unit.reconcilers.counted import Clients, Elbv2
from wpenv.engine import make_context
from wpenv.errors import TransientError
from wpenv.reconcilers import service as svc
from wpenv.reconcilers.base import Context, Facts
from wpenv.reconcilers.observations import Observations
from wpenv.settings import Settings

TD1 = "arn:aws:ecs:us-east-1:111122223333:task-definition/wpenv-acme:1"
TD2 = "arn:aws:ecs:us-east-1:111122223333:task-definition/wpenv-acme:2"
TG = "arn:aws:elasticloadbalancing:us-east-1:111122223333:targetgroup/wp-acme/0123"
IDS = {"taskDefinitionArn": TD1, "securityGroupId": "sg-1", "targetGroupArn": TG}


def _ctx(ids: dict[str, Any] | None = None, **spec: Any) -> Context:
    settings = Settings(cluster_name="wpenv", private_subnet_ids=["subnet-a", "subnet-b"])
    return make_context(
        "ns", "acme", {"tenantId": "acme", **spec}, settings=settings, clients=None,
        ids=IDS if ids is None else ids,
    )


def test_desired_service_runs_on_fargate_privately_behind_the_target_group() -> None:
    doc = svc.desired_service(_ctx(replicas=3))
    assert doc["cluster"] == "wpenv" and doc["serviceName"] == "wpenv-acme"
    assert (doc["launchType"], doc["platformVersion"]) == ("FARGATE", "1.4.0")
    assert doc["taskDefinition"] == TD1 and doc["desiredCount"] == 3
    assert doc["networkConfiguration"] == {"awsvpcConfiguration": {
        "subnets": ["subnet-a", "subnet-b"], "securityGroups": ["sg-1"],
        "assignPublicIp": "DISABLED",
    }}
    assert doc["loadBalancers"] == [
        {"targetGroupArn": TG, "containerName": "wordpress", "containerPort": 80}
    ]
    breaker = doc["deploymentConfiguration"]["deploymentCircuitBreaker"]
    assert breaker == {"enable": True, "rollback": True}
    assert doc["healthCheckGracePeriodSeconds"] == 120
    assert doc["propagateTags"] == "SERVICE" and doc["enableECSManagedTags"] is True
    tags = {t["key"]: t["value"] for t in doc["tags"]}
    assert tags["wpenv.bbws.io/tenant"] == "acme"
    assert tags[svc.TAG_REQUESTED] == TD1


def test_suspended_means_zero_tasks() -> None:
    assert svc.desired_service(_ctx(suspended=True, replicas=4))["desiredCount"] == 0
    assert svc.desired_count(_ctx(suspended=False, replicas=4)) == 4


def test_client_token_is_deterministic_and_follows_the_request() -> None:
    first = svc.desired_service(_ctx())["clientToken"]
    assert first == svc.desired_service(_ctx())["clientToken"]
    assert len(first) <= 36
    other = svc.desired_service(_ctx(ids={**IDS, "taskDefinitionArn": TD2}))["clientToken"]
    assert other != first


@pytest.mark.parametrize("missing", ["taskDefinitionArn", "securityGroupId", "targetGroupArn"])
def test_waits_for_each_dependency(missing: str) -> None:
    with pytest.raises(TransientError) as caught:
        svc.desired_service(_ctx(ids={k: v for k, v in IDS.items() if k != missing}))
    assert caught.value.reason == "WaitingForDependencies"


def test_autoscaling_owns_the_count_within_its_range() -> None:
    ctx = _ctx(replicas=2, autoscaling={"minReplicas": 2, "maxReplicas": 5})
    assert svc.count_matches(ctx, 4) and not svc.count_matches(ctx, 6)
    assert not svc.count_matches(_ctx(replicas=2), 4)
    assert svc.count_matches(_ctx(replicas=2, suspended=True), 0)


def _service(task_definition: str, *deployments: dict[str, Any], requested: str = "") -> dict[
    str, Any
]:
    tags = [{"key": svc.TAG_REQUESTED, "value": requested}] if requested else []
    return {"taskDefinition": task_definition, "deployments": list(deployments), "tags": tags}


def test_rollout_reads_the_primary_deployment() -> None:
    primary = {"status": "PRIMARY", "rolloutState": "IN_PROGRESS", "taskDefinition": TD2}
    assert svc.rollout_of(_service(TD2, primary, requested=TD2)) == svc.Rollout("IN_PROGRESS",
                                                                                None)
    untracked = {"status": "PRIMARY", "runningCount": 2, "desiredCount": 2}
    assert svc.rollout_of(_service(TD1, untracked)).state == "COMPLETED"


def test_a_failed_deployment_is_a_rollback() -> None:
    back = {"status": "PRIMARY", "rolloutState": "IN_PROGRESS", "taskDefinition": TD1}
    failed = {"status": "ACTIVE", "rolloutState": "FAILED", "taskDefinition": TD2}
    assert svc.rollout_of(_service(TD1, back, failed)) == svc.Rollout("IN_PROGRESS", TD2)


def test_back_on_another_revision_than_requested_is_a_rollback() -> None:
    done = {"status": "PRIMARY", "rolloutState": "COMPLETED", "taskDefinition": TD1}
    assert svc.rollout_of(_service(TD1, done, requested=TD2)).failed == TD2
    assert svc.rollout_of(_service(TD1, done, requested=TD1)).failed is None
    assert svc.rollout_of(_service(TD1, done)).failed is None


def test_observation_facts_of_a_rolled_back_service() -> None:
    """The wanted revision failed and ECS went back: settled, and the facts say so."""
    ctx = _ctx(ids={"taskDefinitionArn": TD2}, replicas=2)  # no target group: no I/O
    back = {"status": "PRIMARY", "rolloutState": "COMPLETED", "taskDefinition": TD1}
    failed = {"status": "ACTIVE", "rolloutState": "FAILED", "taskDefinition": TD2}
    service = {
        **_service(TD1, back, failed, requested=TD2),
        "serviceArn": "arn:aws:ecs:us-east-1:111122223333:service/wpenv/wpenv-acme",
        "status": "ACTIVE", "runningCount": 2, "desiredCount": 2,
    }
    observed = svc.Service().inspect(ctx, service)
    assert observed.exists and observed.up_to_date and observed.found is service
    assert observed.facts == Facts(
        running=2, desired=2, healthy=0, rollout_state="COMPLETED", serving=TD1,
        rolled_back_from=TD2,
    )
    assert "rolled the service back" in observed.detail


def test_a_draining_service_does_not_exist_but_is_found() -> None:
    draining = {"serviceArn": "arn:x", "status": "DRAINING", "serviceName": "wpenv-acme"}
    observed = svc.Service().inspect(_ctx(), draining)
    assert not observed.exists and observed.found is draining and observed.facts is None
    with pytest.raises(TransientError) as caught:
        svc.Service().create(_ctx(), observed)
    assert caught.value.reason == "ServiceDraining"


def test_declarations() -> None:
    service = svc.Service()
    assert service.ids == ("serviceArn",)
    assert service.gone == {
        "ServiceNotFoundException", "ServiceNotActiveException", "ClusterNotFoundException"
    }
    assert set(service.needs) == {"TaskDefinition", "TargetGroup", "ListenerRule",
                                  "SecurityGroup"}
    assert service.retainable and service.archive is None


def test_a_failed_rollout_says_why_in_ecss_words() -> None:
    pull = ("CannotPullContainerError: pull image manifest has been retried 5 time(s): "
            "failed to resolve ref wordpress:broken: not found")
    service = {"events": [
        {"message": "(service s) (deployment d) deployment failed: tasks failed to start."},
        {"message": f"(service s) was unable to place a task. Reason: {pull}."},
        {"message": "(service s) has started a deployment (d): created."},
    ], "deployments": [{"status": "PRIMARY", "rolloutStateReason": "circuit breaker"}]}
    assert svc.failure_reason(service) == pull
    quiet = {"events": [], "deployments": [
        {"status": "PRIMARY", "rolloutStateReason": "ECS deployment circuit breaker: task "
         "failed to start."}]}
    assert svc.failure_reason(quiet) == "ECS deployment circuit breaker: task failed to start."
    assert svc.failure_reason({}) == "tasks failed to start"
    lean = svc.lean({**service, "events": [*service["events"], *[{"message": "steady"}] * 97]})
    assert lean["events"] == [service["events"][1]]  # only what failure_reason reads
    assert svc.failure_reason(lean) == pull
    assert lean["deployments"] == service["deployments"]
    assert svc.lean({"events": [{"message": "has reached a steady state."}]})["events"] == []


# --- a rotated database secret reaches the tasks through a new deployment -----------------

V1, V2 = "11111111-aaaa-4bbb-8ccc-000000000001", "11111111-aaaa-4bbb-8ccc-000000000002"


def test_tasks_on_another_secret_version_are_rolled() -> None:
    held = {svc.TAG_SECRET_VERSION: V1}
    assert svc.secret_rollout(held, V2, desired=2) == svc.ROLL
    assert svc.secret_rollout(held, V1, desired=2) is None


def test_nothing_to_roll_without_tasks_or_without_a_known_version() -> None:
    assert svc.secret_rollout({svc.TAG_SECRET_VERSION: V1}, V2, desired=0) == svc.TAG_ONLY
    # A service from before versions were tagged: recorded, not rolled.
    assert svc.secret_rollout({}, V2, desired=2) == svc.TAG_ONLY
    assert svc.secret_rollout({svc.TAG_SECRET_VERSION: V1}, None, desired=2) is None


def test_a_new_service_is_tagged_with_the_secret_version_its_tasks_read() -> None:
    doc = svc.desired_service(_ctx(ids={**IDS, "dbSecretVersion": V1}))
    assert {t["key"]: t["value"] for t in doc["tags"]}[svc.TAG_SECRET_VERSION] == V1
    bare = svc.desired_service(_ctx())
    assert svc.TAG_SECRET_VERSION not in {t["key"] for t in bare["tags"]}


def test_a_service_on_an_older_secret_version_is_stale_and_says_so() -> None:
    ctx = _ctx(ids={"taskDefinitionArn": TD1, "dbSecretVersion": V2}, replicas=2)
    done = {"status": "PRIMARY", "rolloutState": "COMPLETED", "taskDefinition": TD1}
    service = {
        **_service(TD1, done, requested=TD1),
        "serviceArn": "arn:aws:ecs:us-east-1:111122223333:service/wpenv/wpenv-acme",
        "status": "ACTIVE", "runningCount": 2, "desiredCount": 2,
    }
    service["tags"].append({"key": svc.TAG_SECRET_VERSION, "value": V1})
    observed = svc.Service().inspect(ctx, service)
    assert observed.exists and not observed.up_to_date
    assert observed.detail == svc.STALE_TASKS.format(have=V1, current=V2)
    service["tags"][-1]["value"] = V2
    assert svc.Service().inspect(ctx, service).up_to_date


def test_no_target_health_is_read_while_no_task_runs() -> None:
    """clients=None: a DescribeTargetHealth here would fail the test."""
    ctx = _ctx(replicas=2)
    starting = {"status": "PRIMARY", "rolloutState": "IN_PROGRESS", "taskDefinition": TD1}
    service = {
        **_service(TD1, starting),
        "serviceArn": "arn:aws:ecs:us-east-1:111122223333:service/wpenv/wpenv-acme",
        "status": "ACTIVE", "runningCount": 0, "desiredCount": 2,
        "loadBalancers": [{"targetGroupArn": TG}],
    }
    observed = svc.Service().inspect(ctx, service)
    assert observed.facts is not None and observed.facts.healthy == 0
    assert not observed.ready
    with pytest.raises(AttributeError):
        svc.Service().inspect(ctx, {**service, "runningCount": 1})  # one runs: it is read


def test_all_healthy_is_kept_while_the_service_shows_the_same_tasks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        vpc = boto3.client("ec2", region_name="us-east-1").create_vpc(
            CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        elbv2 = boto3.client("elbv2", region_name="us-east-1")
        group = elbv2.create_target_group(Name="wp-acme", Protocol="HTTP", Port=80,
                                          VpcId=vpc, TargetType="ip")
        arn = group["TargetGroups"][0]["TargetGroupArn"]
        elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": "10.0.0.5"},
                                                            {"Id": "10.0.0.6"}])
        clients = Clients(Elbv2(elbv2))
        ctx = make_context("ns", "acme", {"tenantId": "acme", "replicas": 2},
                           settings=Settings(), clients=clients,
                           ids={**IDS, "targetGroupArn": arn})
        ctx.observations = Observations(60.0)
        done = {"id": "d1", "status": "PRIMARY", "rolloutState": "COMPLETED",
                "taskDefinition": TD1, "runningCount": 2, "desiredCount": 2}
        service = {**_service(TD1, done), "serviceArn": "arn:svc", "status": "ACTIVE",
                   "runningCount": 2, "desiredCount": 2, "pendingCount": 0,
                   "loadBalancers": [{"targetGroupArn": arn}]}
        for _ in range(3):
            observed = svc.Service().inspect(ctx, service)
            assert observed.ready and observed.facts is not None
            assert observed.facts.healthy == 2
        assert clients.elbv2.calls == ["describe_target_health"], "read once, then kept"
        replaced = {**service, "deployments": [{**done, "runningCount": 1}], "runningCount": 1}
        svc.Service().inspect(ctx, replaced)  # ECS replacing a task: read again
        assert clients.elbv2.calls == ["describe_target_health"] * 2
