"""Throttled attempts counted from botocore's hooks, against the platform's rate limits."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from prometheus_client import REGISTRY

from tests.platform.chaos import aws_fault_state, set_aws_faults
from wpenv.aws import Clients


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_every_throttled_attempt_counts_and_the_call_once(endpoint: str, clients: Clients) -> None:
    # A bucket of one call that never refills: the second call is throttled on every try.
    set_aws_faults(endpoint, rate_limits="off,ecs:ListClusters=1/0")
    throttled = _sample("wpenv_aws_throttled_total", service="ecs", operation="ListClusters")
    failed = _sample("wpenv_aws_calls_total", service="ecs", operation="ListClusters",
                     outcome="ThrottlingException")
    clients.ecs.list_clusters()
    with pytest.raises(ClientError):
        clients.ecs.list_clusters()
    injected = aws_fault_state(endpoint)["injected"]["throttled ecs:ListClusters"]
    assert injected >= 2, "botocore retried the throttled call"
    assert _sample("wpenv_aws_throttled_total", service="ecs",
                   operation="ListClusters") == throttled + injected
    assert _sample("wpenv_aws_calls_total", service="ecs", operation="ListClusters",
                   outcome="ThrottlingException") == failed + 1
