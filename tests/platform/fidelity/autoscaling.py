"""Application Auto Scaling as AWS answers it.

Deleting or deregistering what does not exist is `ObjectNotFoundException`; moto says
`ValidationException` ("No scalable target found", "No scaling policy found"), which a real
account never sends for that case.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


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


def wants(request: Any) -> bool:
    """Whether moto's answer to `request` may need rewriting."""
    return any(rule.target == request.target for rule in REWRITES)


def rewrite(request: Any, status: str, body: bytes) -> bytes | None:
    """AWS's error body for moto's, or None."""
    return rewritten(request.target, body)
