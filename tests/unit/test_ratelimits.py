"""The client-side token buckets: rates, waiting, thread safety, and what a call is.

The operator's buckets are the platform's (one table, wpenv/ratelimits.py); here they
reserve and wait instead of refusing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest
from moto import mock_aws
from prometheus_client import REGISTRY

from tests.platform import chaos
from wpenv import ratelimits
from wpenv.aws import RATE_HEADROOM, Clients, call_of
from wpenv.ratelimits import Call, Limit, Limiter
from wpenv.settings import Settings


class Clock:
    """A clock the test moves, and a sleep that moves it."""

    def __init__(self) -> None:
        self.now = 500.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def ecs(action: str) -> Call:
    return Call("ecs", action, {})


def tiny(capacity: float, refill: float, *actions: str) -> Limit:
    return Limit("ecs", "Tiny", capacity, refill, frozenset(actions))


def test_a_burst_takes_the_capacity_then_one_token_per_refill_interval() -> None:
    clock = Clock()
    limiter = Limiter([tiny(3, 2, "DescribeServices")], clock)
    delays = [limiter.reserve(ecs("DescribeServices")) for _ in range(6)]
    assert delays == [0.0, 0.0, 0.0, 0.5, 1.0, 1.5]
    clock.now += 10  # refilled, never above the capacity
    assert [limiter.reserve(ecs("DescribeServices")) for _ in range(4)] == [0, 0, 0, 0.5]


def test_a_call_outside_every_family_never_waits() -> None:
    limiter = Limiter([tiny(1, 1, "DescribeServices")], Clock())
    assert [limiter.reserve(ecs("ListClusters")) for _ in range(50)] == [0.0] * 50
    assert limiter.reserve(Call("iam", "GetRole", {})) == 0.0


def test_wait_sleeps_out_the_debt_of_the_slowest_bucket() -> None:
    clock = Clock()
    account = Limit("ecs", "Account", 2, 10, frozenset({"DescribeServices"}))
    limiter = Limiter([account, tiny(2, 1, "DescribeServices")], clock, clock.sleep)
    waited = [limiter.wait(ecs("DescribeServices")) for _ in range(3)]
    assert waited == [0.0, 0.0, 1.0]  # the 1-a-second bucket decides, not the 10
    assert clock.slept == [1.0]


def test_threads_never_send_above_the_rate_together() -> None:
    capacity, refill, threads, each = 4.0, 40.0, 12, 5
    limiter = Limiter([tiny(capacity, refill, "UpdateService")])
    sent: list[float] = []
    lock = threading.Lock()

    def caller() -> None:
        for _ in range(each):
            limiter.wait(ecs("UpdateService"))
            with lock:
                sent.append(time.monotonic())

    workers = [threading.Thread(target=caller) for _ in range(threads)]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    sent.sort()
    assert len(sent) == threads * each
    # All 60 went out, and no earlier than the buckets allow: 4 at once, then 40 a second.
    assert sent[-1] - started >= (threads * each - capacity) / refill - 0.01
    for i, first in enumerate(sent):  # any window: at most capacity + refill x its length
        later = [t for t in sent[i:] if t - first <= 0.25]
        assert len(later) <= capacity + refill * 0.25 + 1


def test_the_operator_and_the_platform_share_one_table() -> None:
    platform = chaos.parse_limits("on")  # what the platform enforces by default
    assert all(a is b for a, b in zip(platform, ratelimits.DEFAULT_LIMITS, strict=True))
    assert chaos.parse_limits("on,ecs:ServiceRead=7/3") == ratelimits.parse_limits(
        "ecs:ServiceRead=7/3"
    )


def test_the_setting_overrides_a_family_and_refuses_a_bucket_that_never_refills() -> None:
    limits = ratelimits.parse_limits(Settings(aws_rate_limits="ecs:ServiceRead=7/3")
                                     .aws_rate_limits)
    read = [lim for lim in limits if (lim.service, lim.name) == ("ecs", "ServiceRead")]
    assert [(lim.capacity, lim.refill) for lim in read] == [(7, 3)]
    with pytest.raises(ValueError, match="never refills"):
        Settings(aws_rate_limits="ecs:ServiceRead=7/0")
    with pytest.raises(ValueError, match="aws_rate_limits"):
        Settings(aws_rate_limits="ecs-ServiceRead")


def _model(service: str, operation: str) -> Any:
    return botocore.session.get_session().get_service_model(service).operation_model(operation)


def test_a_botocore_call_is_named_as_its_request_on_the_wire_would_be() -> None:
    filtered = call_of(_model("ec2", "DescribeSecurityGroups"),
                       {"Filters": [{"Name": "vpc-id", "Values": ["v"]}]})
    unfiltered = call_of(_model("ec2", "DescribeSecurityGroups"), {"GroupIds": ["sg-1"]})
    limiter = Limiter(ratelimits.EC2_LIMITS)
    assert [lim.name for lim in limiter.applicable(filtered)] == ["NonMutating"]
    assert [lim.name for lim in limiter.applicable(unfiltered)] == ["UnfilteredNonMutating"]
    elb = call_of(_model("elbv2", "DescribeRules"), {"ListenerArn": "arn"})
    assert elb.service == "elasticloadbalancing" and elb.params["Version"] == "2015-12-01"
    assert {lim.name for lim in Limiter(ratelimits.ELBV2_LIMITS).applicable(elb)} == {
        "Account", "NonMutating"}
    pool = call_of(_model("cognito-idp", "DescribeUserPoolClient"),
                   {"UserPoolId": "us-east-1_a", "ClientId": "c"})
    assert pool.params["UserPoolId"] == "us-east-1_a"
    per_pool = [lim for lim in Limiter(ratelimits.COGNITO_LIMITS).applicable(pool)
                if lim.per == "pool"]
    assert per_pool and per_pool[0].key(pool)[-1] == "us-east-1_a"


@pytest.fixture
def moto_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto's in-process backends behind the operator's clients."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


def _waits(operation: str) -> float:
    labels = {"service": "ecs", "operation": operation}
    return REGISTRY.get_sample_value("wpenv_aws_rate_limit_wait_seconds_count", labels) or 0.0


@pytest.mark.usefixtures("moto_env")
def test_the_clients_wait_for_their_bucket_and_count_the_wait() -> None:
    clients = Clients(Settings(aws_rate_limits="off,ecs:ListClusters=2/5"))
    before = _waits("ListClusters")
    started = time.monotonic()
    for _ in range(5):
        clients.ecs.list_clusters()
    # 2 at once, then 3 at 5 a second, however long moto takes to answer each.
    assert time.monotonic() - started >= 0.6 - 0.01
    assert _waits("ListClusters") > before


def test_headroom_keeps_the_bucket_smaller_than_awss_but_never_empty() -> None:
    clock = Clock()
    one = Limit("ecs", "One", 1, 1, frozenset({"ListServices"}))
    limiter = Limiter([tiny(3, 2, "DescribeServices"), one], clock, headroom=2)
    assert [limiter.reserve(ecs("DescribeServices")) for _ in range(3)] == [0.0, 0.5, 1.0]
    assert [limiter.reserve(ecs("ListServices")) for _ in range(2)] == [0.0, 1.0]


def test_the_operators_clients_keep_headroom() -> None:
    assert Clients(Settings()).limiter.headroom == RATE_HEADROOM > 0


@pytest.mark.usefixtures("moto_env")
def test_a_real_call_draws_from_its_own_pools_and_filters_buckets() -> None:
    """Named from the call's parameters, not its serialized request (a JSON body)."""
    clients = Clients(Settings())
    pools = [clients.cognito_idp.create_user_pool(PoolName=f"p{i}")["UserPool"]["Id"]
             for i in range(2)]
    for pid in pools:
        clients.cognito_idp.list_groups(UserPoolId=pid)
    clients.ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": ["v"]}])
    keys = set(clients.limiter.buckets)
    for pid in pools:
        assert ("cognito-idp", "UserPoolResourceReadPerPool", "ListGroups", pid) in keys
    assert ("ec2", "NonMutating", "DescribeSecurityGroups") in keys
