"""Counting the platform's error answers: who refused (fidelity, chaos, moto) and the summary.

The real layers, stacked as motoserver.py stacks them (journal, chaos, fidelity, then a
stand-in for moto), driven with werkzeug's test client.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment

from werkzeug.test import Client

from tests.platform import journal as jr
from tests.platform import refusals
from tests.platform.chaos import Chaos, ChaosSettings
from tests.platform.fidelity import faithful

AUTH = "AWS4-HMAC-SHA256 Credential=AKID/20261201/us-east-1/{service}/aws4_request, Sig=x"
COGNITO = "AWSCognitoIdentityProviderService"


def moto(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """Stands in for moto: 404 for a path under /missing, else 200."""
    environ["wsgi.input"].read()
    missing = str(environ.get("PATH_INFO")).startswith("/missing")
    start_response("404 Not Found" if missing else "200 OK", [("Content-Type", "text/xml")])
    return [b"<x/>"]


def _stack(settings: ChaosSettings) -> tuple[Client, jr.Journal, Chaos]:
    journal, chaos = jr.Journal(), Chaos(settings)
    return Client(jr.journaled(chaos.wsgi(faithful(moto)), journal)), journal, chaos


def _cognito(client: Client, action: str, doc: dict[str, Any]) -> int:
    headers = {"Authorization": AUTH.format(service="cognito-idp"),
               "X-Amz-Target": f"{COGNITO}.{action}",
               "Content-Type": "application/x-amz-json-1.1"}
    return client.post("/", data=json.dumps(doc), headers=headers).status_code


def test_each_error_answer_is_counted_under_the_layer_that_gave_it() -> None:
    client, journal, chaos = _stack(ChaosSettings(rate_limits="off"))
    http_url = {"UserPoolId": "p", "ClientName": "c", "CallbackURLs": ["http://x.example/"]}
    assert _cognito(client, "CreateUserPoolClient", http_url) == 400
    assert _cognito(client, "ListUserPools", {"MaxResults": 1}) == 200
    iam = {"Authorization": AUTH.format(service="iam")}
    assert client.get("/missing", headers=iam).status_code == 404
    chaos._apply(ChaosSettings(rate=1.0, codes=("InternalFailure",), rate_limits="off"))
    assert _cognito(client, "ListUserPools", {"MaxResults": 1}) == 500
    assert journal.refusals == {
        "fidelity cognito InvalidParameterException": 1,
        "error 404": 1,
        "fault InternalFailure": 1,
    }
    client.delete(jr.JOURNAL_PATH)
    assert client.get(jr.REFUSALS_PATH).json == dict(journal.refusals), "a clear keeps them"


def test_a_throttle_is_counted_apart_from_a_fault() -> None:
    client, journal, _ = _stack(ChaosSettings(rate_limits="off,cognito-idp:ListUserPools=1/0"))
    statuses = [_cognito(client, "ListUserPools", {"MaxResults": 1}) for _ in range(3)]
    assert statuses == [200, 400, 400]
    assert journal.refusals == {"throttle TooManyRequestsException": 2}


def test_the_summary_has_one_line_per_kind_most_frequent_code_first() -> None:
    counts = {"fidelity elbv2 TooManyRules": 3, "fidelity cognito InvalidParameterException": 9,
              "fault InternalFailure": 3, "fault ServiceUnavailable": 1,
              "throttle ThrottlingException": 7, "error 404": 28, "error 400": 3}
    assert refusals.summary(counts) == [
        "platform refusals: 12 (cognito InvalidParameterException: 9, elbv2 TooManyRules: 3)",
        "injected faults: 4 (InternalFailure: 3, ServiceUnavailable: 1)",
        "throttles: 7 (ThrottlingException: 7)",
        "other error answers: 31 (404: 28, 400: 3)",
    ]
    assert refusals.summary({}) == [
        "platform refusals: 0", "injected faults: 0", "throttles: 0", "other error answers: 0",
    ]
