"""With a tiny bucket on both sides, the operator's clients wait and are never throttled.

The platform refuses calls over its bucket as AWS does (tests/platform/chaos.py); the
operator's clients keep to their own (wpenv/ratelimits.py). A burst from many threads,
as a thousand drift checks or a restart would send, goes through without one refusal;
the same burst without the client-side buckets is throttled, so the test can fail.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client import REGISTRY

from tests.platform.chaos import aws_fault_state, set_aws_faults
from wpenv.aws import Clients
from wpenv.settings import Settings

pytestmark = pytest.mark.e2e

THREADS, CALLS = 8, 5
# The platform's bucket has one token more than the operator's: what a request's trip
# over the network may reorder (two sent 0.1 s apart may arrive closer).
PLATFORM = "ecs:ServiceRead=3/10"
OPERATOR = "ecs:ServiceRead=2/10"



def _burst(clients: Clients, cluster: str) -> float:
    """THREADS x CALLS ListServices at once; how long they took."""
    started = time.monotonic()

    def calls() -> None:
        for _ in range(CALLS):
            clients.ecs.list_services(cluster=cluster)

    with ThreadPoolExecutor(THREADS) as pool:
        for future in [pool.submit(calls) for _ in range(THREADS)]:
            future.result()
    return time.monotonic() - started


def _throttled(endpoint: str) -> int:
    injected = aws_fault_state(endpoint)["injected"]
    return sum(n for what, n in injected.items() if what.startswith("throttled ecs:"))


def _operator_throttled() -> float:
    labels = {"service": "ecs", "operation": "ListServices"}
    return REGISTRY.get_sample_value("wpenv_aws_throttled_total", labels) or 0.0


def test_a_burst_waits_for_tokens_instead_of_being_throttled(
    endpoint: str, platform: dict[str, str]
) -> None:
    cluster = Settings().cluster_name
    set_aws_faults(endpoint, rate_limits=PLATFORM)
    _burst(Clients(Settings(aws_rate_limits="off")), cluster)
    assert _throttled(endpoint) > 0, "without client-side buckets the burst is throttled"

    set_aws_faults(endpoint, rate_limits=PLATFORM)  # full buckets, counts cleared
    assert _throttled(endpoint) == 0
    before = _operator_throttled()
    took = _burst(Clients(Settings(aws_rate_limits=OPERATOR)), cluster)
    assert _throttled(endpoint) == 0, aws_fault_state(endpoint)["injected"]
    assert _operator_throttled() == before
    assert took >= (THREADS * CALLS - 2) / 10 - 0.05, "the clients waited for their tokens"
