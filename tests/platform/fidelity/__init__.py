"""The fidelity layer: where moto accepts or answers what AWS would not, answer as AWS does.

It sits between the operator and moto in the platform's one server (motoserver.py), beside
the request journal and the fault injection. Each rule is a documented AWS behaviour the
operator relies on; docs/aws-fidelity.md lists them with AWS's page, where the platform
enforces it, and the test that proves it. The operator has no emulator-specific code: it
meets AWS's answers here.

A rule module offers one or both of:
- `refuse(request) -> Refusal | None`: look at a request before moto does and refuse it
  with AWS's error code and message (moto never sees it);
- `rewrite(request, status, body) -> bytes | None`: change moto's error answer to AWS's;
- `after(request) -> None`: once moto answered a request the rule `wants` successfully, do
  what AWS does next on its own (rotation.py runs the rotation function's testSecret step;
  its CONTROL makes a rotation schedule come due and runs all four steps).
Modules are listed in RULES; each is a file of its own in this package. A request is read
once for every layer of the server by tests/platform/requests.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus
from types import ModuleType
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from tests.platform.fidelity import (
    autoscaling,
    cognito,
    efs_tokens,
    elb_quotas,
    elbv2,
    execution_role,
    iam_boundary,
    iam_propagation,
    rotation,
    secret_names,
    security_groups,
    service_drain,
    validation,
)
from tests.platform.journal import REFUSED_BY
from tests.platform.requests import AwsRequest, read

Request = AwsRequest  # what a rule sees of one request: tests/platform/requests.py


@dataclass(frozen=True)
class Refusal:
    """An error AWS gives for a request: HTTP status, error code and message."""

    status: int
    code: str
    message: str
    query: bool = False  # answer in the query protocol's XML (IAM, ELBv2) instead of JSON
    # The wire format, when neither of those: "json", "query", "ec2" (EC2's own XML),
    # "rest-json" (EFS: x-amzn-ErrorType header) or "rpc-v2-cbor" (the tagging API).
    protocol: str = ""
    # Members the error shape has besides code and message (EFS AccessPointAlreadyExists:
    # AccessPointId), for the JSON protocols.
    fields: tuple[tuple[str, str], ...] = ()


# Resource lifecycles (names and groups that stay taken for a while after a delete) sit
# with the others; the service-model constraints come last: the rules before them answer
# with the more specific messages AWS gives for the same requests.
RULES: tuple[ModuleType, ...] = (
    autoscaling, cognito, efs_tokens, elbv2, elb_quotas, iam_boundary, iam_propagation,
    execution_role, rotation, secret_names, security_groups, service_drain, validation,
)


def answer(start_response: StartResponse, refusal: Refusal) -> Iterable[bytes]:
    """Send `refusal` as the service's protocol writes errors, for botocore to parse."""
    protocol = refusal.protocol or ("query" if refusal.query else "json")
    code, message = refusal.code, refusal.message
    headers = [("x-amzn-ErrorType", code)]
    if protocol == "query":
        side = "Sender" if refusal.status < 500 else "Receiver"
        body = (
            f"<ErrorResponse><Error><Type>{side}</Type>"
            f"<Code>{code}</Code><Message>{_xml(message)}</Message>"
            "</Error><RequestId>fidelity</RequestId></ErrorResponse>"
        ).encode()
        kind = "text/xml"
    elif protocol == "ec2":  # "Error codes for the Amazon EC2 API", "Example error response"
        body = (
            f"<Response><Errors><Error><Code>{code}</Code><Message>{_xml(message)}</Message>"
            "</Error></Errors><RequestID>fidelity</RequestID></Response>"
        ).encode()
        kind, headers = "text/xml", []
    elif protocol == "rest-json":
        body = json.dumps({"ErrorCode": code, "Message": message, **dict(refusal.fields)}).encode()
        kind = "application/json"
    elif protocol == "rpc-v2-cbor":
        body = _cbor_map({"__type": code, "message": message})
        kind, headers = "application/cbor", [("smithy-protocol", "rpc-v2-cbor")]
    else:
        body = json.dumps({"__type": code, "message": message, **dict(refusal.fields)}).encode()
        kind = "application/x-amz-json-1.1"
    phrase = HTTPStatus(refusal.status).phrase if refusal.status in _STATUSES else "Refused"
    start_response(f"{refusal.status} {phrase}",
                   [("Content-Type", kind), ("Content-Length", str(len(body))), *headers])
    return [body]


_answer = answer  # the name rule modules knew
_STATUSES = frozenset(int(status) for status in HTTPStatus)


def _cbor_map(values: dict[str, str]) -> bytes:
    """A CBOR map of text strings (RFC 8949: major types 5 and 3), all that errors need."""

    def head(major: int, length: int) -> bytes:
        if length < 24:
            return bytes([major << 5 | length])
        if length < 256:
            return bytes([major << 5 | 24, length])
        return bytes([major << 5 | 25]) + length.to_bytes(2, "big")

    out = head(5, len(values))
    for key, value in values.items():
        for text in (key, value):
            raw = text.encode()[:65535]
            out += head(3, len(raw)) + raw
    return out


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _rule_name(rule: ModuleType) -> str:
    """A rule module's own name (`elbv2`), as the journal's refusal counts show it."""
    return rule.__name__.rpartition(".")[2]


def faithful(app: WSGIApplication) -> WSGIApplication:
    """Wrap moto so that every rule in RULES holds for every request."""
    refusers = [rule for rule in RULES if hasattr(rule, "refuse")]
    rewriters = [rule for rule in RULES if hasattr(rule, "rewrite")]
    afters = [rule for rule in RULES if hasattr(rule, "after")]

    def wsgi(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if str(environ.get("PATH_INFO") or "").startswith("/wpenv/"):
            return app(environ, start_response)
        request = read(environ)
        for rule in refusers:
            refusal = rule.refuse(request)
            if refusal is not None:
                environ[REFUSED_BY] = f"fidelity {_rule_name(rule)} {refusal.code}"
                return answer(start_response, refusal)
        if not any(rule.wants(request) for rule in rewriters):
            return app(environ, start_response)
        held: dict[str, Any] = {}

        def hold(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            held.update(status=status, headers=headers)
            return lambda _data: None

        body = b"".join(app(environ, hold))
        status, headers = held["status"], held["headers"]
        if not status.startswith("2"):
            for rule in rewriters:
                rewritten = rule.rewrite(request, status, body)
                if rewritten:
                    body = rewritten
                    environ[REFUSED_BY] = f"fidelity {_rule_name(rule)} rewritten"
        else:
            for rule in afters:
                if rule.wants(request):
                    rule.after(request)
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        start_response(status, [*headers, ("Content-Length", str(len(body)))])
        return [body]

    return wsgi
