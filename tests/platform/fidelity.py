"""The fidelity layer: where moto answers differently from AWS, answer as AWS does.

It sits between the operator and moto in the platform's one server (motoserver.py), beside
the request journal and the fault injection. Each rule is a documented AWS behaviour the
operator relies on; docs/aws-fidelity.md lists them with AWS's page and the test that
proves each. The operator has no emulator-specific code: it meets AWS's answers here.

Rules so far:
- Application Auto Scaling: deleting or deregistering what does not exist is
  `ObjectNotFoundException`; moto says `ValidationException` ("No scalable target found",
  "No scaling policy found"), which a real account never sends for that case.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment


@dataclass(frozen=True)
class Rewrite:
    """An error moto gives for `target` that AWS gives with another code."""

    target: str  # X-Amz-Target of a JSON-protocol operation
    moto_code: str
    message_prefix: str
    aws_code: str


REWRITES = (
    Rewrite("AnyScaleFrontendService.DeregisterScalableTarget", "ValidationException",
            "No scalable target found", "ObjectNotFoundException"),
    Rewrite("AnyScaleFrontendService.DeleteScalingPolicy", "ValidationException",
            "No scaling policy found", "ObjectNotFoundException"),
)


def rewritten(target: str, body: bytes) -> bytes | None:
    """The body AWS would send instead of moto's `body`, or None to leave it alone."""
    rules = [rule for rule in REWRITES if rule.target == target]
    if not rules:
        return None
    try:
        error: dict[str, Any] = json.loads(body)
    except ValueError:
        return None
    code = str(error.get("__type", "")).rpartition("#")[2]
    message = str(error.get("message") or error.get("Message") or "")
    for rule in rules:
        if code == rule.moto_code and message.startswith(rule.message_prefix):
            return json.dumps({"__type": rule.aws_code, "message": message}).encode()
    return None


def faithful(app: WSGIApplication) -> WSGIApplication:
    """Wrap moto so that the rules above hold for every request."""

    def wsgi(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        target = str(environ.get("HTTP_X_AMZ_TARGET") or "")
        if not any(rule.target == target for rule in REWRITES):
            return app(environ, start_response)
        held: dict[str, Any] = {}

        def hold(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            held.update(status=status, headers=headers)
            return lambda _data: None

        body = b"".join(app(environ, hold))
        status, headers = held["status"], held["headers"]
        if not status.startswith("2"):
            body = rewritten(target, body) or body
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        start_response(status, [*headers, ("Content-Length", str(len(body)))])
        return [body]

    return wsgi
