"""The overhead benchmark's replay planning: lanes per tenant, identifiers carried over."""

from __future__ import annotations

import base64
import json

from bench import replay
from tests.platform.journal import Entry


def _entry(at: float, action: str, body: dict[str, object], answer: dict[str, object],
           *, done: float | None = None, write: bool = True) -> Entry:
    exchange = {"model": "ecs", "operation": action, "method": "POST", "path": "/",
                "query": "", "headers": {"content-type": "application/x-amz-json-1.1"},
                "body": base64.b64encode(json.dumps(body).encode()).decode(),
                "answer": base64.b64encode(json.dumps(answer).encode()).decode(),
                "answer_headers": {"content-type": "application/x-amz-json-1.1"}}
    return Entry(at, "ecs", action, write, status=200, done=done or at + 0.01,
                 exchange=exchange)


def test_identifiers_that_differ_between_answers_are_carried_over() -> None:
    ids: dict[str, str] = {}
    replay.carried_over(
        {"service": {"serviceArn": "arn:aws:ecs:r:1:service/c/old-abc", "desiredCount": 2,
                     "events": [{"id": "event-one-old"}]}, "ResponseMetadata": {"x": "y"}},
        {"service": {"serviceArn": "arn:aws:ecs:r:1:service/c/new-xyz", "desiredCount": 2,
                     "events": [{"id": "event-one-new"}]}, "ResponseMetadata": {"x": "z"}},
        ids)
    assert ids == {"arn:aws:ecs:r:1:service/c/old-abc": "arn:aws:ecs:r:1:service/c/new-xyz",
                   "event-one-old": "event-one-new"}


def test_calls_go_to_the_tenant_they_name_or_whose_identifiers_they_use() -> None:
    created = _entry(1.0, "CreateService", {"serviceName": "wpenv-oab000"},
                     {"service": {"serviceArn": "arn:aws:ecs:r:1:service/c/x-77f1"}})
    other = _entry(1.1, "CreateService", {"serviceName": "wpenv-oab001"}, {"service": {}})
    uses = _entry(2.0, "UpdateService", {"service": "arn:aws:ecs:r:1:service/c/x-77f1"}, {})
    shared = _entry(2.5, "ListClusters", {}, {}, write=False)
    after = _entry(3.0, "DescribeServices", {"services": ["wpenv-oab001"]}, {}, write=False)
    sql = [replay.SqlCall(1.5, 7, "Connect", "admin@localhost"),
           replay.SqlCall(1.6, 7, "Query", "CREATE DATABASE `wp_oab001`")]
    planned = replay.plan([created, other, uses, shared, after], sql, ["oab000", "oab001"])
    lanes = {tenant: [c.entry.action if c.entry else c.sql.command if c.sql else ""
                      for c in calls] for tenant, calls in planned.lanes.items()}
    assert lanes == {"oab000": ["CreateService", "UpdateService"],
                     "oab001": ["CreateService", "Connect", "Query", "ListClusters",
                                "DescribeServices"]}
    assert planned.unplaced == 0 and planned.calls == 7
