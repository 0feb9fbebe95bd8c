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
(:func:`rotate_now`), and the platform runs the steps as AWS's alternating-users MySQL
template (SecretsManagerRDSMySQLRotationMultiUser) does, against its MariaDB ("Lambda
function rotation strategies": "This strategy updates credentials for two users in one
secret ... during the first rotation, the rotation function clones it to create the second
user. Every time the secret rotates, the rotation function alternates which user's password
it updates"; the superuser's credentials are in another secret, named by ``masterarn``):
- createSecret: AWSCURRENT's value with the other user name (``<user>_clone``, or back
  without the suffix; a clone name over MySQL's 32 characters fails the step) and a new
  password (32 characters, none of ``/@"'\\``, as the template asks GetRandomPassword
  for) in a new version staged AWSPENDING, unless that version has one;
- setSecret: done if AWSPENDING logs in; else the pending user must be AWSCURRENT's other
  user on the same host, AWSCURRENT must log in ("Unable to log into database using
  current credentials": no user yet, or a wrong password), ``masterarn`` must name a
  readable secret (a missing key or secret fails the step) on the same host whose login
  works; then, as that superuser, the pending user is created if it does not exist, given
  the current user's grants (``SHOW GRANTS`` replayed for it) and TLS requirement
  (``ALTER USER ... REQUIRE``; not its connection limit), and ``SET PASSWORD FOR`` it: the
  current user and its password are left alone, so whoever logged in with AWSCURRENT
  keeps logging in. (AWS's stock template refuses a clone name over 16 characters,
  MySQL 5.6's limit; the function deployed for the operator raises that to MySQL 8's 32,
  which the platform emulates: tenant user names are at most 26 characters.)
  A custom ``CIPHER``/``ISSUER`` requirement is not emulated (the operator sets none);
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
    secrets = secretsmanager_backends[DEFAULT_ACCOUNT_ID][region].secrets
    # moto's store finds an ARN by scanning itself, which fails ("dictionary changed size
    # during iteration") while another request adds a secret: scan a copy (one C-level
    # copy, atomic under the GIL), with moto's own lookup rules.
    try:
        return type(secrets)(dict.items(secrets))[secret_id]
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
OTHER_USER = ("Attempting to modify user {pending} other than current user or clone "
              "{current}")
OTHER_HOST = "Attempting to modify user for host {pending} other than current host {current}"
NO_CURRENT = "Unable to log into database using current credentials for secret {arn}"
NO_MASTER_KEY = "Secret {arn} has no masterarn, the superuser secret the rotation needs"
NO_MASTER = "Secrets Manager can't find the specified secret {arn}"
MASTER_HOST = "Current database host {current} is not the same host as master {master}"
NO_MASTER_LOGIN = "Unable to log into database using credentials in master secret {arn}"
LONG_CLONE = ("Unable to clone user, username length with _clone appended would exceed "
              "32 characters")
CLONE_SUFFIX = "_clone"
MAX_USER = 32  # MySQL 8's user names (the stock template says 16; see the docstring)
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


def alt_username(user: str) -> str:
    """The template's get_alt_username: toggle the `_clone` suffix."""
    if user.endswith(CLONE_SUFFIX):
        return user[: -len(CLONE_SUFFIX)]
    if len(user + CLONE_SUFFIX) > MAX_USER:
        raise ValueError(LONG_CLONE)
    return user + CLONE_SUFFIX


def _create_step(secret: Any, token: str) -> dict[str, Any]:
    """createSecret: AWSCURRENT's value with a new password, staged AWSPENDING (kept if the
    pending version of this token already has a value)."""
    version = secret.versions.get(token)
    if version is not None and version.get("secret_string"):
        return dict(json.loads(version["secret_string"]))
    current = staged(secret, CURRENT)
    if current is None:
        raise ValueError(f"secret {secret.arn} has no AWSCURRENT value")
    pending = {**current[1], "username": alt_username(str(current[1].get("username") or "")),
               "password": random_password()}
    secret.remove_version_stages_from_old_versions([PENDING])
    secret.versions[token] = {"createdate": int(time.time()), "version_id": token,
                              "version_stages": [PENDING], "secret_string": json.dumps(pending)}
    return pending


def _set_step(secret: Any, pending: dict[str, Any], cafile: str | None) -> None:
    """setSecret: done if AWSPENDING logs in; else, as the superuser of `masterarn`, create
    the pending user with the current one's grants if need be and set its password.
    Raises ValueError (or KeyError) as the template does; the current user is untouched."""
    conn, _ = login(pending, cafile)
    if conn is not None:
        conn.close()
        return
    current = staged(secret, CURRENT)
    if current is None:
        raise ValueError(NO_CURRENT.format(arn=secret.arn))
    value = current[1]
    if alt_username(str(value.get("username") or "")) != pending.get("username"):
        raise ValueError(OTHER_USER.format(pending=pending.get("username"),
                                           current=value.get("username")))
    if value.get("host") != pending.get("host"):
        raise ValueError(OTHER_HOST.format(pending=pending.get("host"), current=value.get("host")))
    conn, _ = login(value, cafile)
    if conn is None:
        raise ValueError(NO_CURRENT.format(arn=secret.arn))
    conn.close()
    master = _master_login(secret, value, cafile)
    try:
        with master.cursor() as cursor:
            _clone_and_set(cursor, str(value["username"]), pending)
        master.commit()
    finally:
        master.close()


def _master_login(secret: Any, value: dict[str, Any], cafile: str | None) -> Any:
    """Log in with the AWSCURRENT value of the secret `masterarn` names; ValueError when
    that cannot be done."""
    master_arn = str(value.get("masterarn") or "")
    if not master_arn:
        raise ValueError(NO_MASTER_KEY.format(arn=secret.arn))
    try:
        found = staged(find_secret(master_arn), CURRENT)
    except KeyError:
        found = None
    if found is None:
        raise ValueError(NO_MASTER.format(arn=master_arn))
    master = found[1]
    if master.get("host") != value.get("host"):
        raise ValueError(MASTER_HOST.format(current=value.get("host"),
                                            master=master.get("host")))
    conn, _ = login(master, cafile)
    if conn is None:
        raise ValueError(NO_MASTER_LOGIN.format(arn=master_arn))
    return conn


def _clone_and_set(cursor: Any, current_user: str, pending: dict[str, Any]) -> None:
    """The template's SQL: create the pending user if it does not exist; copy the current
    user's grants to it (each SHOW GRANTS line up to " TO ", every rotation) and its TLS
    requirement (`ssl_type`: REQUIRE NONE/SSL/X509); then set its password. Resource
    limits (MAX_USER_CONNECTIONS) are neither grants nor TLS options: not copied."""
    user = str(pending["username"])
    cursor.execute("SELECT User FROM mysql.user WHERE User = %s", (user,))
    if cursor.rowcount == 0:
        cursor.execute("CREATE USER %s IDENTIFIED BY %s", (user, str(pending["password"])))
    cursor.execute("SHOW GRANTS FOR %s", (current_user,))
    for row in cursor.fetchall():
        grant = str(row[0]).split(" TO ")[0].replace("%", "%%")
        cursor.execute(grant + " TO %s", (user,))
    cursor.execute("SELECT ssl_type FROM mysql.user WHERE User = %s", (current_user,))
    found = cursor.fetchone()
    ssl_type = found[0].decode() if found and isinstance(found[0], bytes) else (
        found[0] if found else "")
    require = {"ANY": "SSL", "X509": "X509"}.get(str(ssl_type or "").upper(), "NONE")
    cursor.execute(f"ALTER USER %s@'%%' REQUIRE {require}", (user,))
    cursor.execute("SET PASSWORD FOR %s = PASSWORD(%s)", (user, str(pending["password"])))


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
