"""MySQL access for every layer: logins, TLS, the RDS master secret, what failures mean.

Three places talk to the shared server (RDS in AWS, MariaDB in the tests): the Database
step, the archive (dump, verify, restore) and the orphan scan. They all log in here, so
the endpoint, TLS, the timeouts and the charset are decided once. The server is
`db_host`:`db_port` from the settings, for every login; the master's username and password
come only from the secret named by `db_master_secret_arn`, which holds nothing else (that
is all RDS puts into a managed master user secret). MYSQL_* variables are never read.
This module sits in the low layer beside `wpenv.aws` and `wpenv.plan`: it imports nothing
of the operator but `wpenv.settings`, `wpenv.errors` and `wpenv.reasons`.

**TLS.** Every connection is TLS 1.2 or newer and verifies the server's certificate and
host name against `db_ca_bundle` (the system trust store when it is empty); when that
fails nothing is sent in clear instead, and the error says so (`DatabaseTlsFailed`). The
client programs of the archive get the same settings through their option file
(`tls_options`).

A password is a value of a secret and goes nowhere else: not into a log line, an
exception message or a repr (`DatabaseServer` leaves it out).
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pymysql

from wpenv import reasons
from wpenv.errors import TransientError
from wpenv.settings import Settings

if TYPE_CHECKING:  # pymysql's Connection is generic only in its stubs
    from pymysql.connections import Connection
    from pymysql.cursors import Cursor

    MySQLConnection = Connection[Cursor]

CONNECT_TIMEOUT = 5
IO_TIMEOUT = 30
# Can't connect, server gone away, lost connection, too many connections.
UNREACHABLE_CODES = frozenset({2003, 2006, 2013, 1040})
# pymysql: the server offers no TLS although it is required.
SSL_CONNECTION_ERROR = 2026
MIN_TLS = ssl.TLSVersion.TLSv1_2
# For the MariaDB and MySQL client programs (both know the option).
TLS_VERSIONS = "TLSv1.2,TLSv1.3"

MASTER_UNSET = "WPENV_DB_MASTER_SECRET_ARN is not set: the shared database is unknown"
HOST_UNSET = "WPENV_DB_HOST is not set: the shared database server's endpoint is unknown"
UNREADABLE = "secret {name} does not hold a JSON object"
UNREACHABLE = "the shared database server did not answer; trying again later"
TLS_FAILED = (
    "no verified TLS 1.2+ connection to the shared database server {host}: its certificate "
    "or host name does not verify against WPENV_DB_CA_BUNDLE, or it offers no TLS"
)
CA_UNREADABLE = "the CA bundle {path} (WPENV_DB_CA_BUNDLE) cannot be read as PEM certificates"


class MasterSecretUnsetError(TransientError):
    """No master secret is configured, so nothing can log in to the shared server.

    Transient: the operator tries again, and succeeds once the setting is there.
    """

    def __init__(self) -> None:
        super().__init__(reasons.MASTER_SECRET_MISSING, MASTER_UNSET)


class DatabaseHostUnsetError(TransientError):
    """No endpoint is configured (WPENV_DB_HOST): there is no server to log in to."""

    def __init__(self) -> None:
        super().__init__(reasons.DATABASE_HOST_MISSING, HOST_UNSET)


class TlsFailedError(TransientError):
    """No verified TLS connection could be made; transient like an unreachable server, but
    named apart, since the cure is usually the CA bundle or the endpoint name."""

    def __init__(self, message: str) -> None:
        super().__init__(reasons.DATABASE_TLS_FAILED, message)


@dataclass(frozen=True)
class DatabaseServer:
    """Endpoint, login and trusted CAs of a MySQL account; the password never shows in a repr.

    `ca_bundle` is a PEM file of the CAs the server's certificate must chain to; empty
    means the system trust store (still verified, never unverified).
    """

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    ca_bundle: str = ""

    def connect(
        self,
        database: str | None = None,
        *,
        connect_timeout: int = CONNECT_TIMEOUT,
        io_timeout: int = IO_TIMEOUT,
    ) -> MySQLConnection:
        """A connection with this login (see `connect`)."""
        return connect(
            self, database, connect_timeout=connect_timeout, io_timeout=io_timeout
        )


def tls_context(ca_bundle: str) -> ssl.SSLContext:
    """TLS 1.2+, the server's certificate verified against `ca_bundle`, and its host name.

    An unreadable or empty bundle raises TlsFailedError (naming the path, which is no
    secret) rather than falling back to anything weaker.
    """
    try:
        context = ssl.create_default_context(cafile=ca_bundle or None)
    except (OSError, ssl.SSLError):
        raise TlsFailedError(CA_UNREADABLE.format(path=ca_bundle)) from None
    context.minimum_version = MIN_TLS
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def system_ca_file() -> str:
    """The system trust store as a file, for client programs given no bundle ("" if none)."""
    paths = ssl.get_default_verify_paths()
    return paths.cafile or paths.openssl_cafile or ""


def tls_options(server: DatabaseServer, *, mariadb: bool) -> list[tuple[str, str | None]]:
    """Client options (name, value or None for a flag) that verify the server as `connect`.

    MariaDB's client takes `ssl-verify-server-cert`; MySQL 8's removed it for `ssl-mode`.
    """
    ca = server.ca_bundle or system_ca_file()
    options: list[tuple[str, str | None]] = [("ssl-ca", ca)] if ca else []
    if mariadb:
        options += [("ssl", None), ("ssl-verify-server-cert", None)]
    else:
        options += [("ssl-mode", "VERIFY_IDENTITY")]
    return [*options, ("tls-version", TLS_VERSIONS)]


def read_credentials(clients: Any, arn: str) -> dict[str, Any]:
    """The JSON object in a secret's current value (a tenant's or the RDS master's).

    The result holds a password, so never log it. A value that is not a JSON object
    raises ValueError (naming the secret, not its value).
    """
    value = clients.secretsmanager.get_secret_value(SecretId=arn).get("SecretString") or "{}"
    parsed = json.loads(value)
    if not isinstance(parsed, dict):
        raise ValueError(UNREADABLE.format(name=arn))
    return parsed


def endpoint(settings: Settings) -> tuple[str, int]:
    """The shared server's host and port, from the settings (never from a secret)."""
    if not settings.db_host:
        raise DatabaseHostUnsetError()
    return settings.db_host, settings.db_port


def login(settings: Settings, user: str, password: str) -> DatabaseServer:
    """A login on the shared server with the settings' endpoint and CA bundle."""
    host, port = endpoint(settings)
    return DatabaseServer(host, port, user, password, settings.db_ca_bundle)


def login_from_secret(settings: Settings, clients: Any, arn: str) -> DatabaseServer:
    """The login (username, password) in a secret, on the settings' endpoint.

    A tenant's secret also names host and port, for WordPress; the operator reads the
    endpoint from its settings, the one place it is configured.
    """
    value = read_credentials(clients, arn)
    return login(settings, str(value["username"]), str(value["password"]))


def master_server(settings: Settings, clients: Any) -> DatabaseServer:
    """The shared server's master login, from the RDS master secret the settings name."""
    if not settings.db_master_secret_arn:
        raise MasterSecretUnsetError()
    return login_from_secret(settings, clients, settings.db_master_secret_arn)


def _tls_failure(exc: pymysql.err.OperationalError) -> bool:
    """Whether a failed connect is about TLS (pymysql keeps the ssl error it wrapped)."""
    original = getattr(exc, "original_exception", None)
    return isinstance(original, ssl.SSLError) or error_code(exc) == SSL_CONNECTION_ERROR


def connect(
    server: DatabaseServer,
    database: str | None = None,
    *,
    connect_timeout: int = CONNECT_TIMEOUT,
    io_timeout: int = IO_TIMEOUT,
) -> MySQLConnection:
    """A verified TLS connection: utf8mb4, autocommit (DDL commits anyway), bounded waits.

    The short default timeouts suit the reconcilers' small statements; the archive passes
    longer ones, since CHECKSUM TABLE of a big table takes a while.
    """
    context = tls_context(server.ca_bundle)
    try:
        return pymysql.connect(
            host=server.host,
            port=server.port,
            user=server.user,
            password=server.password,
            database=database,
            connect_timeout=connect_timeout,
            read_timeout=io_timeout,
            write_timeout=io_timeout,
            charset="utf8mb4",
            autocommit=True,
            ssl=context,
        )
    except pymysql.err.OperationalError as exc:
        if _tls_failure(exc):
            raise TlsFailedError(TLS_FAILED.format(host=server.host)) from exc
        raise


def master_connection(settings: Settings, clients: Any) -> MySQLConnection:
    """Log in to the shared server with the RDS master secret's credentials."""
    return master_server(settings, clients).connect()


def error_code(exc: BaseException) -> int | None:
    """The MySQL error number of a pymysql error (its first argument), if it has one."""
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def is_unreachable(exc: BaseException) -> bool:
    """Whether the error says the server could not be reached (not that it refused)."""
    return error_code(exc) in UNREACHABLE_CODES


def server_unreachable() -> TransientError:
    """The error for a server that did not answer: worth another pass, names no login."""
    return TransientError(reasons.DATABASE_UNREACHABLE, UNREACHABLE)


@contextmanager
def reachable() -> Iterator[None]:
    """Turn "cannot reach the server" into TransientError; other errors propagate."""
    try:
        yield
    except pymysql.err.OperationalError as exc:
        if is_unreachable(exc):
            raise server_unreachable() from exc
        raise
