"""Secrets Manager RotateSecret as AWS runs it: the rotation function's testSecret step.

With RotateImmediately false, "Secrets Manager tests the rotation configuration by running
the testSecret step of the Lambda rotation function. This test creates an AWSPENDING version
of the secret and then removes it" (Secrets Manager API Reference, RotateSecret). For a
MySQL secret that step logs in with the secret's username and password on its host and
port, over TLS. Rotation is asynchronous: the call succeeds and the step fails later, and
"when rotation is unsuccessful, the AWSPENDING staging label might be attached to an empty
secret version"; then "any later invocation of RotateSecret assumes that a previous
rotation request is still in progress and returns an error".

moto invokes the function (a stub here) and leaves its AWSPENDING copy behind either way.
The platform runs the step itself against its MariaDB, as the rotation function would:
- after moto configured the rotation, it logs in with the secret's AWSCURRENT value over
  TLS (verified against WPENV_DB_CA_BUNDLE); if that works, the AWSPENDING version goes
  again; if not, the AWSPENDING version stays, emptied, and the failure is kept in FAILED;
- a RotateSecret while an AWSPENDING version other than AWSCURRENT exists is refused with
  InvalidRequestException "A previous rotation isn't complete. That rotation will be
  reattempted.".
Only RotateImmediately false is emulated (the operator never rotates at once).
"""

from __future__ import annotations

import json
import logging
import os
import re
import ssl
import threading
from typing import TYPE_CHECKING, Any

import pymysql
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.secretsmanager.models import secretsmanager_backends

if TYPE_CHECKING:  # the package imports this module while it defines Refusal
    from tests.platform.fidelity import Refusal

log = logging.getLogger("wpenv.platform.rotation")

TARGET = "secretsmanager.RotateSecret"
PENDING = "AWSPENDING"
CURRENT = "AWSCURRENT"
CODE = "InvalidRequestException"
IN_PROGRESS = "A previous rotation isn't complete. That rotation will be reattempted."
CA_ENV = "WPENV_DB_CA_BUNDLE"
LOGIN_TIMEOUT = 5
_REGION = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/secretsmanager/")

# (secret ARN, why testSecret failed): what a test reads to see a failed rotation.
FAILED: list[tuple[str, str]] = []
_LOCK = threading.Lock()


def _secret(request: Any) -> Any | None:
    """moto's secret the request names, or None."""
    found = _REGION.search(request.headers.get("authorization", ""))
    region = found[1] if found else "us-east-1"
    secret_id = str(request.json().get("SecretId") or "")
    try:
        return secretsmanager_backends[DEFAULT_ACCOUNT_ID][region].secrets[secret_id]
    except KeyError:
        return None


def stranded_pending(secret: Any) -> str | None:
    """The id of an AWSPENDING version that is not also AWSCURRENT, if there is one."""
    for version_id, version in secret.versions.items():
        stages = version.get("version_stages") or []
        if PENDING in stages and CURRENT not in stages:
            return str(version_id)
    return None


def run_test_step(value: dict[str, Any], cafile: str | None) -> str | None:
    """The testSecret step of a MySQL rotation function: log in; None, or why it failed."""
    context = ssl.create_default_context(cafile=cafile or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        conn = pymysql.connect(
            host=str(value.get("host") or ""),
            port=int(value.get("port") or 3306),
            user=str(value.get("username") or ""),
            password=str(value.get("password") or ""),
            database=value.get("dbname") or None,
            ssl=context,
            connect_timeout=LOGIN_TIMEOUT,
        )
    except (pymysql.MySQLError, OSError, ValueError) as exc:
        code = exc.args[0] if isinstance(exc, pymysql.MySQLError) and exc.args else None
        return f"unable to log into database (error {code or type(exc).__name__})"
    conn.close()
    return None


def _value(secret: Any) -> dict[str, Any]:
    try:
        value = json.loads(secret.secret_string or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _not_immediate(request: Any) -> bool:
    return request.target == TARGET and request.json().get("RotateImmediately") is False


def refuse(request: Any) -> Refusal | None:
    """Refuse RotateSecret while a failed rotation's AWSPENDING version is still there."""
    from tests.platform.fidelity import Refusal  # noqa: PLC0415 (see the import above)

    if request.target != TARGET:
        return None
    secret = _secret(request)
    if secret is None or stranded_pending(secret) is None:
        return None
    return Refusal(400, CODE, IN_PROGRESS)


def wants(request: Any) -> bool:
    """After-hook requests: RotateSecret without an immediate rotation."""
    return _not_immediate(request)


def rewrite(request: Any, status: str, body: bytes) -> bytes | None:
    """Errors are moto's own; nothing to rewrite."""
    return None


def after(request: Any) -> None:
    """Run the emulated testSecret on moto's AWSPENDING version and settle it as AWS would."""
    if not _not_immediate(request):
        return
    secret = _secret(request)
    if secret is None:
        return
    pending = stranded_pending(secret)
    if pending is None:
        return
    failure = run_test_step(_value(secret), os.environ.get(CA_ENV))
    with _LOCK:
        if failure is None:
            secret.versions.pop(pending, None)  # "creates an AWSPENDING version ... removes it"
            return
        version = secret.versions[pending]
        version.pop("secret_string", None)  # left attached to an empty version
        version.pop("secret_binary", None)
        FAILED.append((str(secret.arn), failure))
    log.warning("rotation of %s failed in testSecret: %s", secret.name, failure)
