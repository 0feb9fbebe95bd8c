"""MySQL access for every layer: the RDS master secret, logging in, and what failures mean.

Three places talk to the shared server (RDS in AWS, MariaDB in the tests): the Database
step, the archive (dump, verify, restore) and the orphan scan. They all log in here, so
the source of the master credentials, the timeouts and the charset are decided once. The
master login comes only from the secret named by `db_master_secret_arn`; MYSQL_*
variables are never read. This module sits in the low layer beside `wpenv.aws` and
`wpenv.plan`: it imports nothing of the operator but `wpenv.settings` and `wpenv.errors`.

A password is a value of a secret and goes nowhere else: not into a log line, an
exception message or a repr (`DatabaseServer` leaves it out).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pymysql

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

MASTER_UNSET = "WPENV_DB_MASTER_SECRET_ARN is not set: the shared database is unknown"
UNREADABLE = "secret {name} does not hold a JSON object"
UNREACHABLE = "the shared database server did not answer; trying again later"


class MasterSecretUnsetError(TransientError):
    """No master secret is configured, so nothing can log in to the shared server.

    Transient: the operator tries again, and succeeds once the setting is there.
    """

    def __init__(self) -> None:
        super().__init__("MasterSecretMissing", MASTER_UNSET)


@dataclass(frozen=True)
class DatabaseServer:
    """Host, port and login of a MySQL account; the password never shows in a repr."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)

    def connect(
        self,
        database: str | None = None,
        *,
        connect_timeout: int = CONNECT_TIMEOUT,
        io_timeout: int = IO_TIMEOUT,
    ) -> MySQLConnection:
        """A connection with this login (see `connect`)."""
        return connect(
            self.host,
            self.port,
            self.user,
            self.password,
            database,
            connect_timeout=connect_timeout,
            io_timeout=io_timeout,
        )


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


def server_from_secret(clients: Any, arn: str) -> DatabaseServer:
    """The login in a secret of RDS's shape (host, port, username, password)."""
    value = read_credentials(clients, arn)
    return DatabaseServer(
        host=str(value["host"]),
        port=int(value["port"]),
        user=str(value["username"]),
        password=str(value["password"]),
    )


def master_server(settings: Settings, clients: Any) -> DatabaseServer:
    """The shared server's master login, from the RDS master secret the settings name."""
    if not settings.db_master_secret_arn:
        raise MasterSecretUnsetError()
    return server_from_secret(clients, settings.db_master_secret_arn)


def connect(
    host: str,
    port: int,
    user: str,
    password: str,
    database: str | None = None,
    *,
    connect_timeout: int = CONNECT_TIMEOUT,
    io_timeout: int = IO_TIMEOUT,
) -> MySQLConnection:
    """A pymysql connection: utf8mb4, autocommit (DDL commits anyway), bounded waits.

    The short default timeouts suit the reconcilers' small statements; the archive passes
    longer ones, since CHECKSUM TABLE of a big table takes a while.
    """
    return pymysql.connect(
        host=host,
        port=port,
        user=user,
        password=password,
        database=database,
        connect_timeout=connect_timeout,
        read_timeout=io_timeout,
        write_timeout=io_timeout,
        charset="utf8mb4",
        autocommit=True,
    )


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
    return TransientError("DatabaseUnreachable", UNREACHABLE)


@contextmanager
def reachable() -> Iterator[None]:
    """Turn "cannot reach the server" into TransientError; other errors propagate."""
    try:
        yield
    except pymysql.err.OperationalError as exc:
        if is_unreachable(exc):
            raise server_unreachable() from exc
        raise
