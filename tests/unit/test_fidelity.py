"""The fidelity layer's rewrites, without a server."""

from __future__ import annotations

import json

from tests.platform.fidelity.autoscaling import rewritten

DEREGISTER = "AnyScaleFrontendService.DeregisterScalableTarget"


def _error(code: str, message: str) -> bytes:
    return json.dumps({"__type": code, "message": message}).encode()


def test_a_missing_scalable_target_is_object_not_found_as_on_aws() -> None:
    body = rewritten(DEREGISTER, _error("ValidationException", "No scalable target found for x"))
    assert body is not None
    assert json.loads(body) == {"__type": "ObjectNotFoundException",
                                "message": "No scalable target found for x"}


def test_other_validation_errors_and_operations_are_left_alone() -> None:
    assert rewritten(DEREGISTER, _error("ValidationException", "Bad dimension")) is None
    assert rewritten("AnyScaleFrontendService.RegisterScalableTarget",
                     _error("ValidationException", "No scalable target found")) is None
    assert rewritten(DEREGISTER, b"not json") is None
