"""Every secret value that crosses the platform's AWS API, kept so a test can hunt for it.

A leak test must know each secret the operator ever held, including the ones deleted
before the test runs: deprovisioning force-deletes its secrets (and moto forgets a
force-deleted secret at once), and a rolled-back app client takes its client secret with
it. Snapshots of Secrets Manager miss those; the platform's server does not, since every
value passes through it. The witness sits in front of moto and keeps, from:

- Secrets Manager ``CreateSecret``, ``PutSecretValue`` and ``UpdateSecret`` requests, and
  ``GetSecretValue`` answers: the ``SecretString`` (the values of its secret-looking keys,
  ``password``, ``client_secret`` ..., when it is a JSON object; the whole string when not);
- ``GetRandomPassword`` answers: the ``RandomPassword``;
- Cognito ``CreateUserPoolClient``, ``UpdateUserPoolClient`` and ``DescribeUserPoolClient``
  answers: the app client's ``ClientSecret``.

``GET /wpenv/witness/secrets`` serves ``{"secrets": [{"value", "sources"}, ...]}``, where
each source says which call carried the value and for which secret or client.
This endpoint hands out secrets on purpose, as moto's own GetSecretValue does: the platform
is a loopback-only emulator with fixed test credentials.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import urllib.request
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from tests.platform.requests import read

__all__ = ["WITNESS_PATH", "Witness", "disguises", "read_secrets", "secrets_in", "witnessed"]

WITNESS_PATH = "/wpenv/witness/secrets"
# Keys of a JSON secret whose values are secret (the rest, host, port, username, are not).
SECRET_KEY = re.compile(r"password|secret|salt|key|token", re.IGNORECASE)
SM = "secretsmanager."
COGNITO = "AWSCognitoIdentityProviderService."
REQUEST_VALUES = {f"{SM}CreateSecret", f"{SM}PutSecretValue", f"{SM}UpdateSecret"}
ANSWER_VALUES = {
    f"{SM}GetSecretValue", f"{SM}GetRandomPassword", f"{COGNITO}CreateUserPoolClient",
    f"{COGNITO}UpdateUserPoolClient", f"{COGNITO}DescribeUserPoolClient",
}


def secrets_in(secret_string: str) -> list[tuple[str, str]]:
    """(value, key) of what is secret in a SecretString: its secret keys' values, or all."""
    try:
        doc = json.loads(secret_string)
    except ValueError:
        return [(secret_string, "")]
    if not isinstance(doc, dict):
        return [(secret_string, "")]
    return [(str(v), str(k)) for k, v in doc.items()
            if SECRET_KEY.search(str(k)) and isinstance(v, str) and v]


def _json(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body or b"{}")
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def carried(target: str, doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(value, source) of the secrets in one request or answer document of `target`."""
    action = target.rpartition(".")[2]
    if target.startswith(SM):
        where = str(doc.get("SecretId") or doc.get("Name") or doc.get("ARN") or "")
        found = [(v, f"{action} {where} {k}".strip())
                 for v, k in secrets_in(str(doc.get("SecretString") or "")) if v]
        if doc.get("RandomPassword"):
            found.append((str(doc["RandomPassword"]), action))
        return found
    client = doc.get("UserPoolClient") or {}
    if isinstance(client, dict) and client.get("ClientSecret"):
        return [(str(client["ClientSecret"]), f"{action} {client.get('ClientId', '')}")]
    return []


class Witness:
    """The secrets seen so far, value -> every source that carried it (thread-safe)."""

    def __init__(self) -> None:
        self._seen: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def saw(self, found: Iterable[tuple[str, str]]) -> None:
        """Keep these (value, source) pairs, each source of a value once, in order."""
        with self._lock:
            for value, source in found:
                sources = self._seen.setdefault(value, [])
                if source not in sources:
                    sources.append(source)

    def secrets(self) -> list[dict[str, Any]]:
        """Every value kept, with its sources."""
        with self._lock:
            return [{"value": v, "sources": list(s)} for v, s in self._seen.items()]


def witnessed(app: WSGIApplication, witness: Witness) -> WSGIApplication:
    """Keep the secrets of the requests and answers of `app`, and serve WITNESS_PATH."""

    def wsgi(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == WITNESS_PATH:
            body = json.dumps({"secrets": witness.secrets()}).encode()
            start_response("200 OK", [("Content-Type", "application/json"),
                                      ("Content-Length", str(len(body)))])
            return [body]
        target = str(environ.get("HTTP_X_AMZ_TARGET") or "")
        if target in REQUEST_VALUES:
            witness.saw(carried(target, read(environ).json()))  # the one request reader
        if target not in ANSWER_VALUES:
            return app(environ, start_response)
        result = app(environ, start_response)
        try:
            answer = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        witness.saw(carried(target, _json(answer)))
        return [answer]

    return wsgi


def read_secrets(endpoint: str, timeout: float = 30.0) -> dict[str, list[str]]:
    """value -> sources of every secret the server at `endpoint` has seen."""
    with urllib.request.urlopen(endpoint.rstrip("/") + WITNESS_PATH, timeout=timeout) as got:
        doc = json.load(got)
    return {str(item["value"]): [str(s) for s in item["sources"]] for item in doc["secrets"]}


def disguises(secret: str, shortest: int = 12) -> dict[str, str]:
    """form name -> how `secret` reads in that form, to search a text for it.

    As it is, percent- and form-encoded, JSON-escaped, and base64-encoded (standard and
    URL-safe): inside a longer encoded text the secret can start at any of three byte
    offsets, so for each the characters that depend on its own bytes alone (whole 3-byte
    groups) are what any encoding of a text holding it contains. Encoded forms shorter
    than `shortest` are left out (they could match by chance).
    """
    found = {
        "plain": secret,
        "percent-encoded": quote(secret, safe=""),
        "form-encoded": quote_plus(secret),
        "JSON-escaped": json.dumps(secret)[1:-1],
    }
    raw = secret.encode()
    for shift in range(3):
        whole = (shift + len(raw)) // 3
        first = 1 if shift else 0
        for name, encode in (("base64", base64.b64encode),
                             ("base64url", base64.urlsafe_b64encode)):
            text = encode(b"\0" * shift + raw).decode()[first * 4:whole * 4]
            if len(text) >= shortest:
                found[f"{name}@{shift}"] = text
    return found
