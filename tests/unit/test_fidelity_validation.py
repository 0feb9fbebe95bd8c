"""Requests against botocore's model constraints: patterns, lengths, enums, ranges, lists.

Each request is what boto3 sends with its own validation on (botocore's serializer,
tests/unit/botocore_wire.py), read by the platform's request reader, as the server does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment

import pytest

from tests.platform.fidelity import RULES, Refusal, faithful, validation
from tests.platform.fidelity.validation import compiled, matches, refuse, translate
from tests.platform.requests import _load, available_services, describe, parameters, read
from tests.unit.botocore_wire import environ_for
from wpenv.aws import SERVICES

PLATFORM_SERVICES = (*SERVICES, "acm")
ECS_DEFINITION: dict[str, Any] = {
    "family": "wpenv-acme", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
    "cpu": "256", "memory": "512", "executionRoleArn": "arn:aws:iam::123456789012:role/x",
    "containerDefinitions": [{
        "name": "wordpress", "image": "wordpress:6.8", "essential": True,
        "portMappings": [{"containerPort": 80, "protocol": "tcp"}],
        "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "g"}},
        "secrets": [{"name": "WORDPRESS_DB_PASSWORD", "valueFrom": "arn:aws:secretsmanager:x"}],
    }],
    "tags": [{"key": "wpenv:tenant", "value": "acme"}],
}


def _refusal(service: str, operation: str, params: dict[str, Any],
             version: str = "") -> Refusal | None:
    return refuse(read(environ_for(service, operation, params, version)))


def test_a_pattern_json() -> None:
    refusal = _refusal("logs", "CreateLogGroup", {"logGroupName": "wpenv:acme"})
    assert refusal is not None
    assert (refusal.status, refusal.code, refusal.protocol) == (
        400, "InvalidParameterException", "json")
    assert refusal.message == (
        "1 validation error detected: Value 'wpenv:acme' at 'logGroupName' failed to satisfy "
        r"constraint: Member must satisfy regular expression pattern: [\.\-_/#A-Za-z0-9]+")
    assert _refusal("logs", "CreateLogGroup", {"logGroupName": "/wpenv/acme"}) is None


def test_a_max_length_query() -> None:
    refusal = _refusal("iam", "CreateRole", {"RoleName": "r" * 65,
                                             "AssumeRolePolicyDocument": "{}"})
    assert refusal is not None
    assert (refusal.code, refusal.protocol) == ("ValidationError", "query")
    assert refusal.message == (
        f"1 validation error detected: Value '{'r' * 65}' at 'roleName' failed to satisfy "
        "constraint: Member must have length less than or equal to 64")
    assert _refusal("iam", "CreateRole", {"RoleName": "r" * 64,
                                          "AssumeRolePolicyDocument": "{}"}) is None


def test_an_enum_and_nested_structures_and_lists_json() -> None:
    bad = {**ECS_DEFINITION, "networkMode": "bridged", "containerDefinitions": [
        ECS_DEFINITION["containerDefinitions"][0],
        {"name": "c", "image": "i", "logConfiguration": {"logDriver": "journal"}}]}
    refusal = _refusal("ecs", "RegisterTaskDefinition", bad)
    assert refusal is not None and refusal.code == "ClientException"
    assert refusal.message == (
        "2 validation errors detected: Value 'bridged' at 'networkMode' failed to satisfy "
        "constraint: Member must satisfy enum value set: [bridge, host, awsvpc, none]; "
        "Value 'journal' at 'containerDefinitions.2.member.logConfiguration.logDriver' "
        "failed to satisfy constraint: Member must satisfy enum value set: [json-file, "
        "syslog, journald, gelf, fluentd, awslogs, splunk, awsfirelens]")
    assert _refusal("ecs", "RegisterTaskDefinition", ECS_DEFINITION) is None
    tags = {**ECS_DEFINITION, "tags": [{"key": "k" * 129, "value": "v"}]}
    refusal = _refusal("ecs", "RegisterTaskDefinition", tags)
    assert refusal is not None and "at 'tags.1.member.key'" in refusal.message
    assert "Member must have length less than or equal to 128" in refusal.message


def test_a_range_query_and_a_list_length() -> None:
    refusal = _refusal("elasticloadbalancing", "CreateTargetGroup",
                       {"Name": "tg", "Port": 70000, "Protocol": "HTTP"}, "2015-12-01")
    assert refusal is not None and refusal.code == "ValidationError"
    assert refusal.message.endswith(
        "Value '70000' at 'port' failed to satisfy constraint: Member must have value less "
        "than or equal to 65535")
    urls = [f"https://h{i}.example.com/" for i in range(101)]
    refusal = _refusal("cognito-idp", "UpdateUserPoolClient", {
        "UserPoolId": "us-east-1_abc", "ClientId": "c", "CallbackURLs": urls})
    assert refusal is not None and refusal.code == "InvalidParameterException"
    assert "at 'callbackURLs' failed to satisfy constraint: Member must have length less " \
           "than or equal to 100" in refusal.message


def test_members_of_a_scalar_list_are_reported_at_the_list() -> None:
    refusal = _refusal("cognito-idp", "UpdateUserPoolClient", {
        "UserPoolId": "us-east-1_abc", "ClientId": "c",
        "CallbackURLs": ["https://ok.example.com/", "https://x/" + "a" * 1024]})
    assert refusal is not None
    assert "at 'callbackURLs' failed to satisfy constraint: Member must satisfy constraint: " \
           "[Member must have length less than or equal to 1024, Member must have length " \
           "greater than or equal to 1, Member must satisfy regular expression pattern: " \
           in refusal.message


def test_an_ec2_range_uses_ec2s_own_error() -> None:
    refusal = _refusal("ec2", "DescribeSecurityGroups", {"MaxResults": 1001})
    assert refusal is not None
    assert (refusal.code, refusal.protocol) == ("InvalidParameterValue", "ec2")
    assert refusal.message.startswith("Value (1001) for parameter maxResults is invalid.")
    assert _refusal("ec2", "DescribeSecurityGroups", {"MaxResults": 1000}) is None


def test_a_pattern_in_a_nested_rest_json_body() -> None:
    params = {"ClientToken": "t", "FileSystemId": "fs-0123456789abcdef0",
              "RootDirectory": {"Path": "//x"}}
    refusal = _refusal("elasticfilesystem", "CreateAccessPoint", params)
    assert refusal is not None
    assert (refusal.code, refusal.protocol) == ("ValidationException", "rest-json")
    assert refusal.message.startswith(
        "1 validation error detected: Value '//x' at 'rootDirectory.path' failed to satisfy "
        "constraint: Member must satisfy regular expression pattern: ")
    params["RootDirectory"] = {"Path": "/wpenv/acme"}
    assert _refusal("elasticfilesystem", "CreateAccessPoint", params) is None


def test_rest_xml_is_decoded_and_checked_but_s3_is_not_refused() -> None:
    env = environ_for("s3", "PutObject", {"Bucket": "b", "Key": "k", "StorageClass": "COLD"})
    request = describe(env, b"")
    decoded = parameters(request)
    assert decoded is not None
    found = validation.violations(decoded[0].input_shape, decoded[1])
    assert [(v.path, v.value) for v in found] == [("storageClass", "COLD")]
    assert refuse(request) is None  # S3 does not answer with these validation errors


def test_sensitive_values_are_not_repeated() -> None:
    refusal = _refusal("secretsmanager", "PutSecretValue",
                       {"SecretId": "s", "SecretString": "p" * 65537})
    assert refusal is not None and refusal.code == "ValidationException"
    assert "p" * 100 not in refusal.message
    assert "Value at 'secretString' failed to satisfy constraint" in refusal.message


@pytest.mark.parametrize(("pattern", "value", "expected"), [
    (r"[\w+=,.@-]+", "wpenv-acme", True),
    (r"[\w+=,.@-]+", "café", False),  # Java's \w is ASCII
    (r"[\p{L}\p{Z}\p{N}_.:/=+\-@]*", "café au lait", True),  # \p{L} is not
    (r"[\p{L}\p{Z}\p{N}_.:/=+\-@]*", "a{b}", False),
    (r"\p{Print}+", "é", False),  # Java's POSIX classes are ASCII
    (r"[\S]+", "a b", False),
    (r"[\s\S]+", "a b\n", True),
    (r"[\w- ]*", "a-b c", True),  # a hyphen after \w is a literal
    (r"[a-z&&[^aeiou]]+", "bcd", True),
    (r"[a-z&&[^aeiou]]+", "bad", False),
    (r"[\u0020-\uD7FF\uE000-\uFFFD\uD800\uDC00-\uDBFF\uDFFF\t]*", "a\U0001F600", True),
    (r"[\u0020-\uD7FF\uE000-\uFFFD\uD800\uDC00-\uDBFF\uDFFF\t]*", "a\x01", False),
    (r"^[0-9A-Za-z\.\-_]*(?<!\.)$", "a.", False),
])
def test_java_patterns_mean_what_they_mean_in_java(pattern: str, value: str,
                                                   expected: bool) -> None:
    assert matches(pattern, value) is expected


def test_untranslatable_patterns_are_skipped_not_refused() -> None:
    assert translate(r"\Qa.b\E") is None and compiled(r"\Qa.b\E") is None
    assert matches(r"\Qa.b\E", "anything") is None


def _patterns(services: Iterable[str]) -> list[tuple[str, str]]:
    found = []
    for service in services:
        shapes = _load(service)._shape_resolver._shape_map
        found += [(service, str(s["pattern"])) for s in shapes.values() if "pattern" in s]
    return found


def test_how_many_patterns_are_skipped(capsys: pytest.CaptureFixture[str]) -> None:
    """Every pattern of the platform's services is checked; of all botocore's, the count."""
    mine = _patterns(PLATFORM_SERVICES)
    assert len(mine) > 250
    assert [p for p in mine if compiled(p[1]) is None] == []
    everything = _patterns(available_services())
    skipped = sorted({p for _, p in everything if compiled(p) is None})
    with capsys.disabled():
        print(f"\nbotocore patterns: {len(everything)}, skipped: {len(skipped)}")
        for pattern in skipped:
            print(f"  skipped: {pattern}")
    assert len(skipped) < len(everything) / 200


def _app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Length", "2")])
    return [b"{}"]


def test_the_server_refuses_before_moto_and_lets_the_rest_through() -> None:
    assert RULES[-1] is validation  # the more specific rules answer first
    answers: list[str] = []

    def start(status: str, headers: list[tuple[str, str]], *_: Any) -> Callable[[bytes], object]:
        answers.append(status)
        return lambda _data: None

    app = faithful(_app)
    bad = environ_for("iam", "CreateRole", {"RoleName": "a b", "AssumeRolePolicyDocument": "{}"})
    body = b"".join(app(bad, start))
    assert answers[-1].startswith("400") and b"<Code>ValidationError</Code>" in body
    good = environ_for("iam", "CreateRole", {"RoleName": "ab", "AssumeRolePolicyDocument": "{}"})
    assert b"".join(app(good, start)) == b"{}" and answers[-1] == "200 OK"


def test_the_overhead_per_request_is_small(capsys: pytest.CaptureFixture[str]) -> None:
    env = environ_for("ecs", "RegisterTaskDefinition", ECS_DEFINITION)
    body = env["wsgi.input"].read()
    request = describe(env, body)
    refuse(request)  # the model and shapes are loaded once, then cached
    rounds = 2000
    started = time.perf_counter()
    for _ in range(rounds):
        refuse(describe(env, body))
    per_request = (time.perf_counter() - started) / rounds
    with capsys.disabled():
        print(f"\nread + validate RegisterTaskDefinition: {per_request * 1e6:.0f} us")
    assert per_request < 0.005
