"""The request journal's description of requests, its bounds and its WSGI wrapper.

Requests are built the way botocore sends them (signed headers, JSON or form bodies) and
go through the real wrapper with werkzeug's test client; the platform test
(tests/e2e/test_journal.py) checks the same against the moto server over HTTP.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment

import pytest
from werkzeug.test import Client

from tests.platform import journal as jr

AUTH = (
    "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=00"
)


def _environ(service: str, method: str = "POST", path: str = "/", query: str = "",
             **extra: str) -> WSGIEnvironment:
    return {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "HTTP_AUTHORIZATION": AUTH.format(service=service),
        **extra,
    }


def test_json_protocol_action_from_the_target_with_identifiers() -> None:
    body = json.dumps({
        "cluster": "wpenv", "service": "wpenv-acme", "desiredCount": 0,
        "services": ["wpenv-acme", "wpenv-beta"], "networkConfiguration": {"x": 1},
    }).encode()
    env = _environ("ecs", HTTP_X_AMZ_TARGET="AmazonEC2ContainerServiceV20141113.UpdateService",
                   CONTENT_TYPE="application/x-amz-json-1.1")
    entry = jr.describe_request(env, body, 12.5)
    assert (entry.time, entry.service, entry.action, entry.write) == (
        12.5, "ecs", "UpdateService", True)
    assert entry.ids == {
        "cluster": "wpenv", "service": "wpenv-acme", "services": "wpenv-acme,wpenv-beta"
    }


def test_query_protocol_action_and_members_under_their_base_name() -> None:
    body = (b"Action=DescribeTargetGroups&Version=2015-12-01&Names.member.2=wp-b"
            b"&Names.member.1=wp-a&PageSize=10")
    env = _environ("elasticloadbalancing",
                   CONTENT_TYPE="application/x-www-form-urlencoded; charset=utf-8")
    entry = jr.describe_request(env, body, 1.0)
    assert (entry.service, entry.action, entry.write) == (
        "elasticloadbalancing", "DescribeTargetGroups", False)
    assert entry.ids == {"Names": "wp-a,wp-b"}

    ec2 = jr.describe_request(
        _environ("ec2", CONTENT_TYPE="application/x-www-form-urlencoded"),
        b"Action=AuthorizeSecurityGroupIngress&GroupId=sg-1&IpPermissions.1.FromPort=80", 1.0)
    assert (ec2.action, ec2.write, ec2.ids) == ("AuthorizeSecurityGroupIngress", True,
                                                {"GroupId": "sg-1"})


def test_rest_protocol_is_method_and_path() -> None:
    put = jr.describe_request(_environ("s3", "PUT", "/bucket/key", "tagging"), b"", 1.0)
    assert (put.service, put.action, put.write, put.ids) == (
        "s3", "PUT /bucket/key?tagging", True, {})
    get = jr.describe_request(
        _environ("elasticfilesystem", "GET", "/2015-02-01/access-points",
                 "FileSystemId=fs-1&MaxResults=5"), b"", 1.0)
    assert get.action == "GET /2015-02-01/access-points?FileSystemId&MaxResults"
    assert not get.write


@pytest.mark.parametrize(
    ("action", "write"),
    [("DescribeServices", False), ("ListTagsForResource", False), ("GetSecretValue", False),
     ("HeadObject", False), ("BatchGetSecretValue", False), ("CreateService", True),
     ("RegisterScalableTarget", True), ("TagResource", True), ("AssumeRole", True)],
)
def test_write_rule(action: str, write: bool) -> None:
    assert jr.is_write(action) is write


def test_unsigned_requests_have_an_unknown_service() -> None:
    entry = jr.describe_request({"REQUEST_METHOD": "GET", "PATH_INFO": "/x"}, b"", 1.0)
    assert entry.service == "unknown" and entry.action == "GET /x"


def test_the_journal_is_bounded_and_filters_by_arrival_time() -> None:
    journal = jr.Journal(maxlen=3)
    for t in (1.0, 2.0, 3.0, 4.0):
        journal.add(jr.Entry(t, "ecs", "ListServices", False))
    assert [e.time for e in journal.since()] == [2.0, 3.0, 4.0]
    assert [e.time for e in journal.since(3.0)] == [3.0, 4.0]
    assert journal.since(5.0) == []
    assert journal.clear() == 3 and journal.since() == []


def test_entries_survive_the_json_round_trip() -> None:
    entry = jr.Entry(1.5, "ecs", "UpdateService", True, {"service": "wpenv-a"}, 200)
    assert jr.Entry.from_json(json.loads(json.dumps(entry.to_json()))) == entry


def test_helpers_select_writes_reads_and_exact_names() -> None:
    entries = [
        jr.Entry(1.0, "ecs", "UpdateService", True, {"service": "wpenv-t1"}),
        jr.Entry(2.0, "ecs", "UpdateService", True, {"service": "wpenv-t10"}),
        jr.Entry(3.0, "ecs", "DeleteService", True,
                 {"service": "arn:aws:ecs:us-east-1:1:service/wpenv/wpenv-t1"}),
        jr.Entry(4.0, "ecs", "DescribeServices", False, {"services": "wpenv-t2,wpenv-t1"}),
    ]
    assert [e.time for e in jr.writes(entries)] == [1.0, 2.0, 3.0]
    assert [e.time for e in jr.reads(entries)] == [4.0]
    assert [e.time for e in jr.matching(entries, naming="wpenv-t1")] == [1.0, 3.0, 4.0]
    assert [e.time for e in jr.matching(entries, action="UpdateService", naming="wpenv-t1")] == [
        1.0]


class Echo:
    """A stand-in for moto: answers with the body it was given, and a status per path."""

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        status = "400 Bad Request" if environ["PATH_INFO"] == "/bad" else "200 OK"
        start_response(status, [("Content-Type", "application/octet-stream")])
        return [body]


def _client() -> tuple[Client, jr.Journal]:
    journal = jr.Journal()
    return Client(jr.journaled(Echo(), journal)), journal


def test_the_wrapper_records_and_hands_the_body_on_untouched() -> None:
    client, journal = _client()
    body = json.dumps({"SecretId": "wpenv/acme/database"}).encode()
    headers: dict[str, Any] = {
        "Authorization": AUTH.format(service="secretsmanager"),
        "X-Amz-Target": "secretsmanager.GetSecretValue",
        "Content-Type": "application/x-amz-json-1.1",
    }
    answer = client.post("/", data=body, headers=headers)
    assert answer.status_code == 200 and answer.data == body
    client.post("/bad", data=b"Action=CreateRole&RoleName=r1", headers={
        "Authorization": AUTH.format(service="iam"),
        "Content-Type": "application/x-www-form-urlencoded"})
    first, second = journal.since()
    assert (first.service, first.action, first.write, first.status) == (
        "secretsmanager", "GetSecretValue", False, 200)
    assert first.ids == {"SecretId": "wpenv/acme/database"}
    assert (second.action, second.write, second.status, second.ids) == (
        "CreateRole", True, 400, {"RoleName": "r1"})


def test_the_wrapper_serves_and_clears_the_journal() -> None:
    client, journal = _client()
    journal.add(jr.Entry(10.0, "ecs", "ListServices", False, status=200))
    journal.add(jr.Entry(20.0, "ecs", "CreateService", True, {"serviceName": "s"}, 200))
    doc = client.get(jr.JOURNAL_PATH, query_string={"since": "15"}).json
    assert doc is not None and doc["now"] > 20.0
    assert [jr.Entry.from_json(raw) for raw in doc["entries"]] == [journal.since()[1]]
    assert client.get(jr.JOURNAL_PATH, query_string={"since": "soon"}).status_code == 400
    assert client.post(jr.JOURNAL_PATH).status_code == 405
    assert client.delete(jr.JOURNAL_PATH).json == {"cleared": 2}
    assert journal.since() == []  # the journal's own requests are not journaled
    client.get("/wpenv/health")
    assert journal.since() == []


def test_exchanges_keep_the_whole_request_and_answer_only_when_switched_on() -> None:
    journal = jr.Journal(exchanges=True)
    client = Client(jr.journaled(Echo(), journal))
    body = json.dumps({"SecretId": "wpenv/acme/database"}).encode()
    headers: dict[str, Any] = {
        "Authorization": AUTH.format(service="secretsmanager"),
        "X-Amz-Target": "secretsmanager.GetSecretValue",
        "Content-Type": "application/x-amz-json-1.1",
    }
    assert client.post("/", data=body, headers=headers).data == body
    (entry,) = journal.since()
    exchange = entry.exchange
    assert exchange is not None and entry.done is not None and entry.done >= entry.time
    assert (exchange["model"], exchange["operation"], exchange["method"]) == (
        "secretsmanager", "GetSecretValue", "POST")
    assert exchange["headers"] == {"x-amz-target": "secretsmanager.GetSecretValue",
                                   "content-type": "application/x-amz-json-1.1"}
    assert base64.b64decode(exchange["body"]) == base64.b64decode(exchange["answer"]) == body
    assert exchange["answer_headers"]["content-type"] == "application/octet-stream"
    plain = client.get(jr.JOURNAL_PATH).json
    whole = client.get(jr.JOURNAL_PATH, query_string={"exchanges": "1"}).json
    assert plain is not None and "exchange" not in plain["entries"][0]
    assert whole is not None and whole["entries"][0]["exchange"] == exchange
    off = jr.Journal(exchanges=False)
    Client(jr.journaled(Echo(), off)).post("/", data=body, headers=headers)
    assert off.since()[0].exchange is None
