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

When the schedule comes due (every AutomaticallyAfterDays), Secrets Manager runs the
rotation function's four steps. The platform has no clock of 30 days: a test makes the
schedule come due now with ``POST /wpenv/faults/rotation`` ``{"secret_id": ...}``
(:func:`rotate_now`), and the platform runs the steps as AWS's single-user MySQL template
(SecretsManagerRDSMySQLRotationSingleUser) does, against its MariaDB:
- createSecret: a new password (32 characters, none of ``/@"'\\``, as the template asks
  GetRandomPassword for) in a new version staged AWSPENDING, unless that version has one;
- setSecret: log in with AWSPENDING (done if it works), else with AWSCURRENT, else with
  AWSPREVIOUS, and ``SET PASSWORD`` to the pending one: the old password stops working at
  once ("immediately invalidating the user's previous password"); no login at all (the user
  does not exist yet): the step fails, "Unable to log into database with previous, current,
  or pending secret";
- testSecret: log in with AWSPENDING and run ``SELECT NOW()``;
- finishSecret: move AWSCURRENT to the new version; AWSPREVIOUS follows to the old one.
A failed step ends the rotation there: AWSPENDING stays on the new version (so the next
RotateSecret is refused, as above), the failure is kept in FAILED, and the next time the
rotation comes due it is reattempted with the same version, as AWS retries it.
RotateImmediately true is not emulated (the operator never asks for it; moto would stage
an empty version as AWSCURRENT).
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import ssl
import string
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any
from wsgiref.types import StartResponse, WSGIEnvironment

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


def login(value: dict[str, Any], cafile: str | None) -> tuple[Any | None, str | None]:
    """Log in as the template's get_connection does, over verified TLS: (connection, None),
    or (None, why not)."""
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
        return None, f"unable to log into database (error {code or type(exc).__name__})"
    return conn, None


def run_test_step(value: dict[str, Any], cafile: str | None) -> str | None:
    """The testSecret step of a MySQL rotation function: log in; None, or why it failed."""
    conn, failure = login(value, cafile)
    if conn is not None:
        with conn.cursor() as cursor:
            cursor.execute("SELECT NOW()")
        conn.close()
    return failure


def staged(secret: Any, stage: str) -> tuple[str, dict[str, Any]] | None:
    """(version id, parsed value) of the version that carries `stage`, if any has a value."""
    for version_id, version in secret.versions.items():
        if stage in (version.get("version_stages") or []):
            try:
                value = json.loads(version.get("secret_string") or "null")
            except ValueError:
                return None
            return (str(version_id), value) if isinstance(value, dict) else None
    return None


def _value(secret: Any) -> dict[str, Any]:
    """The AWSCURRENT value (moto's `secret_string` is the value the secret was made with)."""
    current = staged(secret, CURRENT)
    return current[1] if current else {}


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


# --- the schedule comes due: the single-user template's four steps --------------------------

PREVIOUS = "AWSPREVIOUS"
PASSWORD_LENGTH = 32  # GetRandomPassword's default length
EXCLUDED = "/@\"'\\"  # the template's default EXCLUDE_CHARACTERS
PUNCTUATION = "!#$%&()*+,-.:;<=>?[]^_`{|}~"  # GetRandomPassword's, less the excluded
ALPHABET = string.ascii_letters + string.digits + PUNCTUATION
NO_LOGIN = (
    "Unable to log into database with previous, current, or pending secret of secret arn {arn}"
)
OTHER_USER = "Attempting to modify user {pending} other than current user {current}"
NOT_ENABLED = "Secret {arn} is not enabled for rotation"
CONTROL_PATH = "/wpenv/faults/rotation"
MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class Outcome:
    """What one rotation did: the version it staged, and whether (and where) it failed."""

    secret: str
    version: str
    step: str = ""  # the step that failed; empty when the rotation completed
    error: str = ""

    @property
    def rotated(self) -> bool:
        return not self.step


def random_password() -> str:
    """GetRandomPassword as the template calls it: 32 characters, one of each type."""
    while True:
        word = "".join(secrets.choice(ALPHABET) for _ in range(PASSWORD_LENGTH))
        kinds = (string.ascii_lowercase, string.ascii_uppercase, string.digits, PUNCTUATION)
        if all(any(c in kind for c in word) for kind in kinds):
            return word


def _create_step(secret: Any, token: str) -> dict[str, Any]:
    """createSecret: AWSCURRENT's value with a new password, staged AWSPENDING (kept if the
    pending version of this token already has a value)."""
    version = secret.versions.get(token)
    if version is not None and version.get("secret_string"):
        return dict(json.loads(version["secret_string"]))
    current = staged(secret, CURRENT)
    if current is None:
        raise ValueError(f"secret {secret.arn} has no AWSCURRENT value")
    pending = {**current[1], "password": random_password()}
    secret.remove_version_stages_from_old_versions([PENDING])
    secret.versions[token] = {"createdate": int(time.time()), "version_id": token,
                              "version_stages": [PENDING], "secret_string": json.dumps(pending)}
    return pending


def _set_step(secret: Any, pending: dict[str, Any], cafile: str | None) -> None:
    """setSecret: done if AWSPENDING logs in; else log in with AWSCURRENT (then AWSPREVIOUS)
    and SET PASSWORD to the pending one. Raises ValueError as the template does."""
    conn, _ = login(pending, cafile)
    if conn is not None:
        conn.close()
        return
    for stage in (CURRENT, PREVIOUS):
        found = staged(secret, stage)
        if found is None:
            continue
        value = found[1]
        if value.get("username") != pending.get("username"):
            raise ValueError(OTHER_USER.format(pending=pending.get("username"),
                                               current=value.get("username")))
        conn, _ = login(value, cafile)
        if conn is not None:
            break
    if conn is None:
        raise ValueError(NO_LOGIN.format(arn=secret.arn))
    try:
        with conn.cursor() as cursor:
            cursor.execute("SET PASSWORD = PASSWORD(%s)", (str(pending["password"]),))
        conn.commit()
    finally:
        conn.close()


def _finish_step(secret: Any, token: str) -> None:
    """finishSecret: AWSCURRENT moves to the new version, AWSPREVIOUS to the old one."""
    current = staged(secret, CURRENT)
    for version in secret.versions.values():
        stages = version["version_stages"]
        for stage in (PREVIOUS, PENDING, CURRENT):
            if stage in stages:
                stages.remove(stage)
    if current is not None and current[0] != token:
        secret.versions[current[0]]["version_stages"].append(PREVIOUS)
    secret.versions[token]["version_stages"].append(CURRENT)
    secret.default_version_id = token  # moto's GetSecretValue without a stage reads this
    secret.secret_string = secret.versions[token]["secret_string"]


def _run_steps(secret: Any, token: str, cafile: str | None) -> Outcome:
    """The four steps in order; the first that raises ends the rotation there."""
    step = "createSecret"
    try:
        pending = _create_step(secret, token)
        step = "setSecret"
        _set_step(secret, pending, cafile)
        step = "testSecret"
        failure = run_test_step(pending, cafile)
        if failure is not None:
            raise ValueError(failure)
        step = "finishSecret"
        _finish_step(secret, token)
    except (ValueError, KeyError, pymysql.MySQLError) as exc:
        return Outcome(str(secret.arn), token, step, str(exc))
    return Outcome(str(secret.arn), token)


def rotate_now(secret: Any, cafile: str | None = None) -> Outcome:
    """The rotation Secrets Manager starts when the schedule comes due (see the docstring).

    A rotation left unfinished is reattempted with its own version (AWS retries it).
    Raises ValueError when rotation is not on: then nothing ever comes due.
    """
    if not secret.rotation_enabled or not secret.rotation_lambda_arn:
        raise ValueError(NOT_ENABLED.format(arn=secret.arn))
    with _LOCK:
        token = stranded_pending(secret) or str(uuid.uuid4())
        outcome = _run_steps(secret, token, cafile or os.environ.get(CA_ENV))
        if outcome.rotated:
            now = int(time.time())
            secret.last_rotation_date = now
            days = int(secret.auto_rotate_after_days or 0)
            secret.next_rotation_date = now + days * 86400 if days else None
        else:
            FAILED.append((outcome.secret, f"{outcome.step}: {outcome.error}"))
    if outcome.rotated:
        log.info("rotated %s: version %s is AWSCURRENT", secret.name, token)
    else:
        log.warning("rotation of %s failed in %s: %s", secret.name, outcome.step,
                    outcome.error)
    return outcome


def find_secret(secret_id: str, region: str = "", account: str = DEFAULT_ACCOUNT_ID) -> Any:
    """moto's secret by ARN or name (region from the ARN, else the given or default one)."""
    parts = secret_id.split(":")
    if secret_id.startswith("arn:") and len(parts) > 4:
        account, region = parts[4], parts[3]
    region = region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    backend = secretsmanager_backends[account][region]
    if not backend._is_valid_identifier(secret_id):
        raise KeyError(secret_id)
    return backend.secrets[secret_id]


class Control:
    """``POST /wpenv/faults/rotation`` ``{"secret_id": ...}``: the schedule comes due now."""

    name = "rotation"
    path = CONTROL_PATH

    def state(self) -> dict[str, Any]:
        """The rotations that failed (secret ARN and why; never a value)."""
        with _LOCK:
            return {"failed": [list(item) for item in FAILED]}

    def clear(self) -> None:
        """Nothing is armed: a rotation happens when asked."""

    def handle(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """POST: rotate the named secret now; GET: the failures so far."""
        method = str(environ.get("REQUEST_METHOD") or "GET").upper()
        status, body = "200 OK", self.state()
        if method == "POST":
            try:
                length = min(int(environ.get("CONTENT_LENGTH") or 0), MAX_BODY)
                doc = json.loads(environ["wsgi.input"].read(length) or b"{}")
                secret = find_secret(str(doc["secret_id"]), str(doc.get("region") or ""))
                outcome = rotate_now(secret)
                body = {**asdict(outcome), "rotated": outcome.rotated}
            except KeyError as exc:
                status, body = "404 Not Found", {"error": f"no secret {exc}"}
            except ValueError as exc:
                status, body = "409 Conflict", {"error": str(exc)}
        elif method != "GET":
            status, body = "405 Method Not Allowed", {"error": "GET, POST"}
        raw = json.dumps(body).encode()
        start_response(status, [("Content-Type", "application/json"),
                                ("Content-Length", str(len(raw)))])
        return [raw]


CONTROL = Control()


def come_due(endpoint: str, secret_id: str, timeout: float = 60.0) -> dict[str, Any]:
    """Make the secret's rotation come due now on the server at `endpoint`; its outcome.

    The answer is the outcome (``rotated``, ``version``, ``step``, ``error``); an HTTP
    error (no such secret, rotation off) raises urllib's HTTPError.
    """
    data = json.dumps({"secret_id": secret_id}).encode()
    request = urllib.request.Request(endpoint.rstrip("/") + CONTROL_PATH, data=data,
                                     method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        outcome: dict[str, Any] = json.loads(answer.read())
    return outcome
