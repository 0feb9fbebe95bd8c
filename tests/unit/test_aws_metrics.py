"""botocore's event hooks count each AWS call once, by outcome, with its latency."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError
from moto import mock_aws
from prometheus_client import REGISTRY

from wpenv.aws import Clients, instrument
from wpenv.settings import Settings


def _calls(service: str, operation: str, outcome: str) -> float:
    labels = {"service": service, "operation": operation, "outcome": outcome}
    return REGISTRY.get_sample_value("wpenv_aws_calls_total", labels) or 0.0


def _timed(service: str, operation: str) -> float:
    labels = {"service": service, "operation": operation}
    return REGISTRY.get_sample_value("wpenv_aws_call_duration_seconds_count", labels) or 0.0


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clients]:
    """The operator's clients against moto's in-process backends."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield Clients(Settings())


def test_a_successful_call_is_counted_and_timed_once(clients: Clients) -> None:
    before = _calls("sts", "GetCallerIdentity", "ok"), _timed("sts", "GetCallerIdentity")
    clients.sts.get_caller_identity()
    assert _calls("sts", "GetCallerIdentity", "ok") == before[0] + 1
    assert _timed("sts", "GetCallerIdentity") == before[1] + 1


def test_a_refused_call_is_counted_under_its_aws_error_code(clients: Clients) -> None:
    code = "ResourceNotFoundException"
    before = _calls("cognito-idp", "DescribeUserPool", code)
    ok = _calls("cognito-idp", "DescribeUserPool", "ok")  # other tests' calls, if any
    with pytest.raises(ClientError):
        clients.cognito_idp.describe_user_pool(UserPoolId="us-east-1_missing")
    assert _calls("cognito-idp", "DescribeUserPool", code) == before + 1
    assert _calls("cognito-idp", "DescribeUserPool", "ok") == ok


def test_instrumenting_twice_counts_once(clients: Clients) -> None:
    instrument(clients.sts)
    before = _calls("sts", "GetCallerIdentity", "ok")
    clients.sts.get_caller_identity()
    assert _calls("sts", "GetCallerIdentity", "ok") == before + 1


def test_a_call_that_never_reached_aws_is_counted_under_its_exception() -> None:
    nowhere = boto3.session.Session(
        region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    ).client("sts", endpoint_url="http://127.0.0.1:9",
             config=Config(retries={"total_max_attempts": 1}, connect_timeout=2))
    instrument(nowhere)
    before = _calls("sts", "GetCallerIdentity", "EndpointConnectionError")
    with pytest.raises(EndpointConnectionError):
        nowhere.get_caller_identity()
    assert _calls("sts", "GetCallerIdentity", "EndpointConnectionError") == before + 1
