"""The chaos layer without a server: buckets, limits, settings, and the errors' wire format.

The wire format is checked with botocore's own response parsers, the code that parses
AWS's answers in production: what they make of our bytes is what the operator would see.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterable
from typing import Any

import botocore.session
import pytest
from botocore.awsrequest import HeadersDict
from botocore.parsers import create_parser

from tests.platform import chaos
from tests.platform.chaos import (
    Call,
    Chaos,
    ChaosSettings,
    describe_call,
    fault_for,
    parse_limits,
    throttle_for,
)
from tests.platform.faults import FAULTS_PATH, Faults
from tests.platform.fidelity import Refusal, answer
from wpenv import ratelimits
from wpenv.ratelimits import Limiter

AUTH = "AWS4-HMAC-SHA256 Credential=AKID/20261201/us-east-1/{service}/aws4_request, Sig=x"


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def call(service: str, action: str, protocol: str = "json", **params: str) -> Call:
    return Call(service, action, protocol, params)


def environ(service: str, *, target: str = "", body: bytes = b"", path: str = "/",
            form: bool = False, **headers: str) -> dict[str, Any]:
    env: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/x-www-form-urlencoded" if form
        else "application/x-amz-json-1.1",
        "HTTP_AUTHORIZATION": AUTH.format(service=service),
        "wsgi.input": io.BytesIO(body),
        **headers,
    }
    if target:
        env["HTTP_X_AMZ_TARGET"] = target
    return env


# --- buckets and limits ----------------------------------------------------------------------


def test_a_bucket_lets_its_capacity_through_then_refills_at_its_rate() -> None:
    clock = Clock()
    update = call("ecs", "UpdateService")
    limiter = Limiter([lim for lim in ratelimits.ECS_LIMITS if lim.name == "ServiceModify"], clock)
    assert all(limiter.admit(update) is None for _ in range(50))
    refused = limiter.admit(update)
    assert refused is not None and refused.name == "ServiceModify"
    clock.now += 0.19  # 5 a second: not a whole token yet
    assert limiter.admit(update) is not None
    clock.now += 0.01
    assert limiter.admit(update) is None
    assert limiter.admit(update) is not None
    clock.now += 3600  # never above capacity
    assert sum(limiter.admit(update) is None for _ in range(60)) == 50


def test_ecs_actions_of_one_category_share_its_bucket() -> None:
    limiter = Limiter(ratelimits.ECS_LIMITS, Clock())
    for _ in range(50):
        assert limiter.admit(call("ecs", "DescribeServices")) is None
        assert limiter.admit(call("ecs", "ListServices")) is None
    assert limiter.admit(call("ecs", "ListServices")) is not None  # 100 taken by both
    assert limiter.admit(call("ecs", "DescribeTaskDefinition")) is None  # another category


def test_ec2_gives_each_api_its_own_bucket_and_unfiltered_describes_a_smaller_one() -> None:
    limiter = Limiter(ratelimits.EC2_LIMITS, Clock())
    unfiltered = call("ec2", "DescribeSecurityGroups", "ec2")
    filtered = call("ec2", "DescribeSecurityGroups", "ec2", **{"Filter.1.Name": "vpc-id"})
    assert sum(limiter.admit(unfiltered) is None for _ in range(80)) == 50
    assert sum(limiter.admit(filtered) is None for _ in range(120)) == 100
    assert sum(limiter.admit(call("ec2", "CreateSecurityGroup", "ec2")) is None
               for _ in range(80)) == 50
    assert sum(limiter.admit(call("ec2", "DeleteSecurityGroup", "ec2")) is None
               for _ in range(80)) == 50  # not sharing CreateSecurityGroup's
    assert sum(limiter.admit(call("ec2", "CreateTags", "ec2")) is None
               for _ in range(150)) == 100  # uncategorized: 100, 10 a second


def test_elbv2_actions_also_draw_from_the_account_bucket() -> None:
    limiter = Limiter(ratelimits.ELBV2_LIMITS, Clock())

    def elb(action: str) -> Call:
        return call("elasticloadbalancing", action, "query", Version="2015-12-01")

    assert sum(limiter.admit(elb("CreateRule")) is None for _ in range(30)) == 20  # Mutating
    assert sum(limiter.admit(elb("DescribeRules")) is None for _ in range(30)) == 20
    refused = limiter.admit(elb("DescribeTargetGroups"))  # the account's 40 are gone
    assert refused is not None and refused.name == "Account"
    v1 = Call("elasticloadbalancing", "DescribeLoadBalancers", "query", {"Version": "2012-06-01"})
    assert limiter.admit(v1) is None  # ELB API version 1: not modelled


def test_cognito_limits_a_category_and_one_operation_per_user_pool() -> None:
    limiter = Limiter(ratelimits.COGNITO_LIMITS, Clock())
    pool_a = call("cognito-idp", "DescribeUserPoolClient", UserPoolId="us-east-1_a")
    pool_b = call("cognito-idp", "DescribeUserPoolClient", UserPoolId="us-east-1_b")
    assert sum(limiter.admit(pool_a) is None for _ in range(10)) == 5  # 5 RPS per pool
    refused = limiter.admit(pool_a)
    assert refused is not None and refused.name == "UserPoolClientReadPerPool"
    assert sum(limiter.admit(pool_b) is None for _ in range(10)) == 5
    list_clients = call("cognito-idp", "ListUserPoolClients", UserPoolId="us-east-1_c")
    assert sum(limiter.admit(list_clients) is None for _ in range(10)) == 5  # 15 in all
    refused = limiter.admit(call("cognito-idp", "ListUserPoolClients", UserPoolId="us-east-1_d"))
    assert refused is not None and refused.name == "UserPoolClientRead"


def test_secrets_manager_quotas_per_second_are_shared_by_the_actions_they_name() -> None:
    clock = Clock()
    limiter = Limiter(ratelimits.SECRETS_MANAGER_LIMITS, clock)
    for _ in range(25):
        assert limiter.admit(call("secretsmanager", "PutSecretValue")) is None
        assert limiter.admit(call("secretsmanager", "UpdateSecret")) is None
    refused = limiter.admit(call("secretsmanager", "UpdateSecretVersionStage"))
    assert refused is not None and refused.name == "Update"
    assert limiter.admit(call("secretsmanager", "TagResource")) is None
    clock.now += 1.0  # 50 a second
    assert sum(limiter.admit(call("secretsmanager", "UpdateSecret")) is None
               for _ in range(60)) == 50


def test_services_that_publish_no_rate_have_no_bucket() -> None:
    limiter = Limiter(ratelimits.DEFAULT_LIMITS, Clock())
    for service, action in [("iam", "CreateRole"), ("sts", "GetCallerIdentity"),
                            ("elasticfilesystem", "POST /2015-02-01/access-points"),
                            ("application-autoscaling", "RegisterScalableTarget"),
                            ("secretsmanager", "CreateSecret")]:
        assert all(limiter.admit(call(service, action)) is None for _ in range(500))


# --- configuration ---------------------------------------------------------------------------


def test_rate_limits_are_on_by_default_and_off_switches_them_off() -> None:
    assert parse_limits("") == parse_limits("on") == ratelimits.DEFAULT_LIMITS
    assert parse_limits("off") == ()


def test_an_override_resizes_a_limit_by_name_or_gives_an_action_a_bucket_of_its_own() -> None:
    limits = parse_limits("ecs:ServiceRead=3/0.5, ecs:UpdateService=1/0")
    [read] = [lim for lim in limits if lim.name == "ServiceRead"]
    assert (read.capacity, read.refill) == (3.0, 0.5)
    limiter = Limiter(limits, Clock())
    assert limiter.admit(call("ecs", "UpdateService")) is None
    refused = limiter.admit(call("ecs", "UpdateService"))
    assert refused is not None and refused.name == "UpdateService"
    assert limiter.admit(call("ecs", "CreateService")) is None  # ServiceModify: not drawn
    only = parse_limits("off,sts:GetCallerIdentity=2")
    assert [(lim.name, lim.capacity, lim.refill) for lim in only] == [
        ("GetCallerIdentity", 2.0, 2.0)]


@pytest.mark.parametrize("spec", ["ecs", "ecs:X", "ecs:X=", "ecs:X=a/1", "X=1/1",
                                  "ecs:X=-1/1", "maybe"])
def test_a_malformed_rate_limit_spec_is_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="WPENV_AWS_RATE_LIMITS"):
        parse_limits(spec)


def test_settings_come_from_the_environment_with_aws_defaults() -> None:
    default = ChaosSettings.from_env({})
    assert (default.rate, default.codes, default.seed, default.rate_limits) == (
        0.0, ("ThrottlingException", "InternalFailure", "ServiceUnavailable"), None, "on")
    custom = ChaosSettings.from_env({
        "WPENV_AWS_FAULT_RATE": "0.25", "WPENV_AWS_FAULT_CODES": "InternalFailure, SlowDown:503",
        "WPENV_AWS_FAULT_SEED": "7", "WPENV_AWS_RATE_LIMITS": "off"})
    assert (custom.rate, custom.codes, custom.seed, custom.rate_limits) == (
        0.25, ("InternalFailure", "SlowDown:503"), 7, "off")


@pytest.mark.parametrize("env", [
    {"WPENV_AWS_FAULT_RATE": "1.5"}, {"WPENV_AWS_FAULT_RATE": "much"},
    {"WPENV_AWS_FAULT_CODES": "Boom"}, {"WPENV_AWS_FAULT_CODES": "Boom:200"},
    {"WPENV_AWS_FAULT_CODES": ","}, {"WPENV_AWS_FAULT_SEED": "x"},
    {"WPENV_AWS_RATE_LIMITS": "ecs:=1"},
])
def test_bad_settings_are_refused_at_start_up(env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=r"WPENV_AWS_|fault code"):
        ChaosSettings.from_env(env)


def test_throttling_means_each_services_own_error() -> None:
    assert (throttle_for("ec2").code, throttle_for("ec2").status) == ("RequestLimitExceeded", 503)
    assert throttle_for("ecs").code == "ThrottlingException"
    assert throttle_for("elasticloadbalancing").code == "ThrottlingException"
    assert throttle_for("iam").code == throttle_for("sts").code == "Throttling"
    assert throttle_for("cognito-idp").code == "TooManyRequestsException"
    assert throttle_for("elasticfilesystem").status == 429
    assert throttle_for("tagging").code == "ThrottledException"
    assert fault_for("Throttling", "cognito-idp").code == "TooManyRequestsException"
    internal, unavailable = fault_for("InternalFailure", "ecs"), fault_for("ServiceUnavailable", "")
    assert (internal.code, internal.status, unavailable.status) == ("InternalFailure", 500, 503)
    assert (fault_for("SlowDown:503", "").code, fault_for("SlowDown:503", "").status) == (
        "SlowDown", 503)


# --- recognising a call ----------------------------------------------------------------------


def test_a_call_is_named_by_its_signing_service_and_operation() -> None:
    json_call = describe_call(environ("ecs", target="AmazonEC2ContainerServiceV20141113."
                                      "DescribeServices"), b'{"cluster": "c"}')
    assert (json_call.service, json_call.action, json_call.protocol) == (
        "ecs", "DescribeServices", "json")
    body = b"Action=DescribeVpcs&Version=2016-11-15&Filter.1.Name=tag%3AName"
    ec2 = describe_call(environ("ec2", body=body, form=True), body)
    assert (ec2.action, ec2.protocol, ec2.params["Filter.1.Name"]) == (
        "DescribeVpcs", "ec2", "tag:Name")
    body = b"Action=CreateRole&Version=2010-05-08"
    assert describe_call(environ("iam", body=body, form=True), body).protocol == "query"
    cbor = describe_call(environ("tagging", path="/service/ResourceGroupsTaggingAPI_20170126/"
                                 "operation/GetResources", HTTP_SMITHY_PROTOCOL="rpc-v2-cbor"),
                         b"")
    assert (cbor.action, cbor.protocol) == ("GetResources", "rpc-v2-cbor")
    efs = describe_call(environ("elasticfilesystem", path="/2015-02-01/access-points"), b"")
    assert efs.protocol == "rest-json"
    assert describe_call(environ("s3", path="/bucket/key"), b"").protocol == ""


# --- the wire format, read by botocore -------------------------------------------------------


def wire(refusal: Refusal) -> tuple[int, HeadersDict, bytes]:
    """What `answer` sends: status, headers, body."""
    held: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
        held.update(status=int(status.split(" ", 1)[0]), headers=HeadersDict(headers))
        return lambda _data: None

    body = b"".join(answer(start_response, refusal))
    assert held["headers"]["Content-Length"] == str(len(body))
    return held["status"], held["headers"], body


@pytest.mark.parametrize(("service", "operation", "protocol"), [
    ("ecs", "DescribeServices", "json"),
    ("cognito-idp", "DescribeUserPool", "json"),
    ("ec2", "DescribeVpcs", "ec2"),
    ("elbv2", "DescribeRules", "query"),
    ("iam", "CreateRole", "query"),
    ("efs", "CreateAccessPoint", "rest-json"),
    ("resourcegroupstaggingapi", "GetResources", "rpc-v2-cbor"),
])
@pytest.mark.parametrize(("code", "status"), [
    ("ThrottlingException", 400), ("RequestLimitExceeded", 503), ("InternalFailure", 500),
    ("ServiceUnavailable", 503), ("TooManyRequestsException", 429),
])
def test_botocore_parses_the_answer_into_the_code_and_status(
    service: str, operation: str, protocol: str, code: str, status: int
) -> None:
    model = botocore.session.get_session().get_service_model(service)
    assert model.protocol == {"rpc-v2-cbor": "smithy-rpc-v2-cbor"}.get(protocol, protocol)
    sent_status, headers, body = wire(Refusal(status, code, "Rate exceeded & <more>",
                                              protocol=protocol))
    parsed = create_parser(model.protocol).parse(
        {"status_code": sent_status, "headers": headers, "body": body},
        model.operation_model(operation).output_shape,
    )
    assert sent_status == status
    assert parsed["Error"]["Code"] == code
    assert parsed["Error"]["Message"] == "Rate exceeded & <more>"


def test_the_fidelity_layers_refusals_keep_their_format() -> None:
    _, _, body = wire(Refusal(400, "ValidationError", "no", query=True))
    assert body.startswith(b"<ErrorResponse><Error><Type>Sender</Type><Code>ValidationError")
    _, headers, body = wire(Refusal(400, "InvalidParameterException", "no"))
    assert json.loads(body) == {"__type": "InvalidParameterException", "message": "no"}
    assert headers["x-amzn-ErrorType"] == "InvalidParameterException"


# --- the layer -------------------------------------------------------------------------------


def run(app: Any, env: dict[str, Any]) -> tuple[int, bytes]:
    held: dict[str, int] = {}

    def start_response(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
        held["status"] = int(status.split(" ", 1)[0])
        return lambda _data: None

    body = b"".join(app(env, start_response))
    return held["status"], body


def moto(env: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """Stands in for moto: reads the body it was given and answers 200."""
    env["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [b"{}"]


ECS_LIST = "AmazonEC2ContainerServiceV20141113.ListClusters"


def test_at_rate_one_every_aws_call_fails_but_the_platforms_own_and_s3_do_not() -> None:
    layer = Chaos(ChaosSettings(rate=1.0, codes=("InternalFailure",), rate_limits="off"))
    app = layer.wsgi(moto)
    status, body = run(app, environ("ecs", target=ECS_LIST, body=b"{}"))
    assert (status, json.loads(body)["__type"]) == (500, "InternalFailure")
    assert run(app, environ("ecs", path="/wpenv/journal"))[0] == 200
    assert run(app, environ("ecs", path="/moto-api/reset"))[0] == 200
    assert run(app, environ("s3", path="/bucket/key"))[0] == 200
    assert layer.state()["injected"] == {"fault InternalFailure": 1}


def test_a_fault_rate_fails_that_fraction_and_a_seed_repeats_the_draw() -> None:
    def outcomes(seed: int) -> list[int]:
        app = Chaos(ChaosSettings(rate=0.3, seed=seed, rate_limits="off")).wsgi(moto)
        return [run(app, environ("ecs", target=ECS_LIST, body=b"{}"))[0] for _ in range(2000)]

    first = outcomes(11)
    assert first == outcomes(11)
    assert 0.25 < sum(status != 200 for status in first) / len(first) < 0.35
    assert set(first) == {200, 400, 500, 503}


def test_a_call_over_its_bucket_is_throttled_without_reaching_moto() -> None:
    reached: list[bytes] = []

    def counting(env: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        reached.append(env["wsgi.input"].read())
        return moto({**env, "wsgi.input": io.BytesIO()}, start_response)

    app = Chaos(ChaosSettings(rate_limits="off,ecs:ListClusters=1/0")).wsgi(counting)
    assert run(app, environ("ecs", target=ECS_LIST, body=b'{"a": 1}'))[0] == 200
    status, body = run(app, environ("ecs", target=ECS_LIST, body=b'{"a": 1}'))
    assert (status, json.loads(body)["__type"]) == (400, "ThrottlingException")
    assert reached == [b'{"a": 1}'], "moto got the first body whole, and no second call"


def test_the_endpoint_changes_resets_and_shows_the_settings_through_faults() -> None:
    layer = Chaos(ChaosSettings(rate=0.1))
    faults = Faults([layer])
    app = faults.wsgi(moto)

    def request(method: str, path: str, doc: object = None) -> tuple[int, Any]:
        body = b"" if doc is None else json.dumps(doc).encode()
        env = environ("", path=path, body=body)
        env["REQUEST_METHOD"] = method
        status, answer_body = run(app, env)
        return status, json.loads(answer_body)

    status, state = request("POST", chaos.CONTROL_PATH, {"rate": 1, "codes": ["Throttling"],
                                                         "rate_limits": "off"})
    assert status == 200 and (state["rate"], state["codes"], state["limits"]) == (
        1.0, ["Throttling"], [])
    assert request("POST", chaos.CONTROL_PATH, {"rate": 2})[0] == 400
    assert request("POST", chaos.CONTROL_PATH, {"colour": "red"})[0] == 400
    assert request("POST", chaos.CONTROL_PATH, {"codes": ["Nope"]})[0] == 400
    assert layer.settings.rate == 1.0, "a refused change changes nothing"
    assert request("GET", FAULTS_PATH)[1]["aws"]["rate"] == 1.0
    status, state = request("DELETE", FAULTS_PATH)  # disarms everything, this too
    assert state["aws"]["rate"] == 0.1 and state["aws"]["rate_limits"] == "on"
    assert request("DELETE", chaos.CONTROL_PATH)[1]["rate"] == 0.1
    assert request("PUT", chaos.CONTROL_PATH)[0] == 405


# --- slow answers ----------------------------------------------------------------------------


def test_a_held_answer_is_carried_out_first_and_sent_late(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    reached: list[bytes] = []

    def counting(env: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        reached.append(env["wsgi.input"].read())
        return moto({**env, "wsgi.input": io.BytesIO()}, start_response)

    slow = chaos.Slowness(seconds=3.0, actions=("ListClusters",), first=1)
    layer = Chaos(ChaosSettings(rate_limits="off", slow=slow))
    app = layer.wsgi(counting)
    assert run(app, environ("ecs", target=ECS_LIST, body=b'{"a": 1}')) == (200, b"{}")
    assert (reached, slept) == ([b'{"a": 1}'], [3.0]), "moto answered, then the answer waited"
    assert run(app, environ("ecs", target=ECS_LIST, body=b"{}"))[0] == 200
    assert slept == [3.0], "only the first call of the action"
    describe = "AmazonEC2ContainerServiceV20141113.DescribeClusters"
    assert run(app, environ("ecs", target=describe, body=b"{}"))[0] == 200
    assert slept == [3.0], "another action is not held"
    assert layer.state()["injected"] == {"slow ListClusters": 1}


def test_a_slow_rate_holds_that_fraction_of_the_named_actions() -> None:
    layer = Chaos(ChaosSettings(seed=1, rate_limits="off", slow=chaos.Slowness(rate=0.5)))
    held = [layer.hold(call("ecs", "ListClusters")) for _ in range(1000)]
    assert 0.4 < sum(1 for h in held if h) / len(held) < 0.6
    assert layer.hold(call("s3", "GET /b/k", protocol="")) == 0.0, "S3 is never held"


def test_rest_calls_are_held_by_their_operation_name() -> None:
    layer = Chaos(ChaosSettings(rate_limits="off", slow=chaos.Slowness(
        seconds=2.0, actions=("CreateAccessPoint",), first=1)))
    efs = call("elasticfilesystem", "POST /2015-02-01/access-points", protocol="rest-json")
    assert layer.hold(efs, lambda: "CreateAccessPoint") == 2.0
    assert layer.hold(efs, lambda: "CreateAccessPoint") == 0.0


def test_slow_settings_come_from_the_environment_and_the_endpoint() -> None:
    settings = ChaosSettings.from_env({
        "WPENV_AWS_SLOW_RATE": "0.1", "WPENV_AWS_SLOW_SECONDS": "2.5",
        "WPENV_AWS_SLOW_ACTIONS": "CreateService, CreateUserPool", "WPENV_AWS_SLOW_FIRST": "1"})
    assert settings.slow == chaos.Slowness(0.1, 2.5, ("CreateService", "CreateUserPool"), 1)
    assert ChaosSettings.from_env({}).slow.on is False
    changed = settings.changed({"slow_actions": ["CreateSecret"], "slow_first": 2})
    assert changed.slow == chaos.Slowness(0.1, 2.5, ("CreateSecret",), 2)
    state = Chaos(changed).state()
    assert (state["slow_actions"], state["slow_first"], state["slow_seconds"]) == (
        ["CreateSecret"], 2, 2.5)
    for bad in ({"WPENV_AWS_SLOW_RATE": "2"}, {"WPENV_AWS_SLOW_SECONDS": "-1"},
                {"WPENV_AWS_SLOW_FIRST": "x"}):
        with pytest.raises(ValueError, match="WPENV_AWS_SLOW_"):
            ChaosSettings.from_env(bad)
