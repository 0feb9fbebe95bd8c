"""The clients' service models load compact: plain dicts, no documentation, same operations."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto import mock_aws

from wpenv.aws import DOCUMENTATION, SERVICES, compact_session


def _undocumented(value: Any) -> Any:
    """`value` as CompactModels loads it: plain dicts with documentation emptied."""
    if isinstance(value, dict):
        return {k: "" if k in DOCUMENTATION and isinstance(v, str) else _undocumented(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_undocumented(v) for v in value]
    return value


def _kinds(value: Any) -> set[type]:
    if isinstance(value, dict):
        return {type(value)}.union(*(_kinds(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_kinds(v) for v in value))
    return set()


@pytest.mark.parametrize("service", SERVICES)
def test_the_compact_model_is_the_full_one_less_its_documentation(service: str) -> None:
    full = boto3.session.Session(region_name="us-east-1")._session.get_service_data(service)
    compact = compact_session("us-east-1")._session.get_service_data(service)
    assert compact == _undocumented(full)
    assert _kinds(compact) == {dict}
    assert "documentation" in str(full)


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_makes_a_client_that_resolves_its_endpoint(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Endpoint resolution reads parts of the model (S3's client context parameters and
    their documentation key) that no plain call of another service touches."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = compact_session("us-east-1").client(service)
    operation = client.meta.service_model.operation_names[0]
    request = client._resolve_endpoint_ruleset(  # what every call does before it is sent
        client.meta.service_model.operation_model(operation), {}, {})
    assert request[0].startswith("https://")


def test_a_compact_client_calls_aws_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        ecs = compact_session("us-east-1").client("ecs")
        ecs.create_cluster(clusterName="wpenv")
        pages = ecs.get_paginator("list_clusters").paginate()
        assert next(arn for page in pages for arn in page["clusterArns"]).endswith("/wpenv")
        s3 = compact_session("us-east-1").client("s3")  # endpoint rules read more of it
        s3.create_bucket(Bucket="wpenv-archive")
        s3.put_object(Bucket="wpenv-archive", Key="a", Body=b"x")
        assert s3.get_object(Bucket="wpenv-archive", Key="a")["Body"].read() == b"x"
