"""The clients' service models load compact: plain dicts, no documentation, same operations."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto import mock_aws

from wpenv.aws import DOCUMENTATION, SERVICES, compact_session


def _undocumented(value: Any) -> Any:
    """`value` as CompactModels loads it: plain dicts without documentation keys."""
    if isinstance(value, dict):
        return {k: _undocumented(v) for k, v in value.items() if k not in DOCUMENTATION}
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


def test_a_compact_client_calls_aws_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        ecs = compact_session("us-east-1").client("ecs")
        ecs.create_cluster(clusterName="wpenv")
        pages = ecs.get_paginator("list_clusters").paginate()
        assert next(arn for page in pages for arn in page["clusterArns"]).endswith("/wpenv")
