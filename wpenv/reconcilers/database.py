"""The tenant's MySQL database and user on the shared server, managed by plain SQL.

This step runs *after* the DatabaseSecret step, a deliberate swap of the HLD's order: the
password is born in Secrets Manager and this step only reads it from there (the secret
recorded as `dbSecretArn`), so a crash between the two steps never leaves a MySQL user whose
password nobody knows. Until the secret is recorded it waits (`WaitingForSecret`).

The operator logs in with the shared RDS master credentials from the secret named by
`db_master_secret_arn` (its only source: MYSQL_* variables are not read). Identifiers go
through `sql_identifier`; the password is always a query parameter, never SQL text. The
user gets ALL on its own database and nothing else; the database name in the GRANT has its
`_` escaped, because GRANT treats `_` as a wildcard and `wp_a_b`.* would also match tenant
"aab"'s `wp_aab`. Whether the secret's password still logs in is checked by logging in.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from typing import TYPE_CHECKING, Any

import pymysql
from botocore.exceptions import ClientError
from pymysql.cursors import Cursor

from wpenv import aws
from wpenv.plan import sql_identifier
from wpenv.reconcilers.base import (
    MISSING,
    Context,
    Observation,
    PermanentError,
    TransientError,
)
from wpenv.reconcilers.db_secret import MASTER_UNSET, read_credentials

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # pymysql's Connection is generic only in its stubs
    from pymysql.connections import Connection

    MySQLConnection = Connection[Cursor]
    Connect = Callable[[str, int, str, str, str | None], MySQLConnection]
    MasterConnect = Callable[[Context], MySQLConnection]

CONNECT_TIMEOUT = 5
IO_TIMEOUT = 30
# Can't connect, server gone away, lost connection, too many connections.
UNREACHABLE_CODES = frozenset({2003, 2006, 2013, 1040})
# Access denied (user/password, database), unknown database, host not allowed.
LOGIN_REFUSED_CODES = frozenset({1044, 1045, 1049, 1130, 1698})

UNREACHABLE = "the shared database server did not answer; trying again later"
NOT_RECORDED = "the database secret is not recorded yet; the DatabaseSecret step makes it"
RECORDED_GONE = "the recorded database secret is gone; the DatabaseSecret step re-creates it"
NO_CREDENTIAL = "the database secret holds no password"
STATEMENT_FAILED = "MySQL refused {what} (error {code})"
STALE_DATABASE = "database {name} does not exist"
STALE_USER = "user {name} does not exist"
STALE_GRANTS = "user {name} has other privileges than ALL on its own database"
STALE_LOGIN = "the secret's password does not log in as {name}"

_GRANT = re.compile(r"^GRANT (?P<privileges>.+?) ON (?P<target>\S+) TO (?P<rest>.+)$")

# Every statement runs with a parameter tuple (pymysql then %-formats it), so a literal
# % is written %%: `'%%'` below is the host pattern '%'.


def account(user: str) -> str:
    """`user`@'%' as SQL text, for statements run with parameters."""
    return f"{sql_identifier(user)}@'%%'"


def grant_target(database: str) -> str:
    """`db`.* with `_` escaped: GRANT reads `_` as "any character" (no I/O)."""
    return sql_identifier(database).replace("_", "\\_") + ".*"


def create_database_sql(ctx: Context) -> str:
    """CREATE DATABASE for the tenant, utf8mb4 as WordPress wants."""
    return (
        f"CREATE DATABASE IF NOT EXISTS {sql_identifier(ctx.names.database)} "
        "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    )


def create_user_sql(ctx: Context) -> str:
    """CREATE USER with the password as the one parameter."""
    return f"CREATE USER IF NOT EXISTS {account(ctx.names.database_user)} IDENTIFIED BY %s"


def alter_user_sql(ctx: Context) -> str:
    """ALTER USER with the password as the one parameter."""
    return f"ALTER USER {account(ctx.names.database_user)} IDENTIFIED BY %s"


def grant_sql(ctx: Context) -> str:
    """The one grant the tenant's user has: everything on its own database."""
    target = grant_target(ctx.names.database)
    return f"GRANT ALL PRIVILEGES ON {target} TO {account(ctx.names.database_user)}"


def revoke_sql(ctx: Context) -> str:
    """Take every privilege away (before granting the one we want again)."""
    return f"REVOKE ALL PRIVILEGES, GRANT OPTION FROM {account(ctx.names.database_user)}"


def drop_sql(ctx: Context) -> list[str]:
    """User first, so nothing can write to the database while it is dropped."""
    return [
        f"DROP USER IF EXISTS {account(ctx.names.database_user)}",
        f"DROP DATABASE IF EXISTS {sql_identifier(ctx.names.database)}",
    ]


def desired_grants(ctx: Context) -> set[tuple[str, str, bool]]:
    """(privileges, target, with grant option) as SHOW GRANTS lists them for our user."""
    return {("USAGE", "*.*", False), ("ALL PRIVILEGES", grant_target(ctx.names.database), False)}


def parse_grants(lines: Sequence[str]) -> set[tuple[str, str, bool]]:
    """SHOW GRANTS lines as (privileges, target, grant option); odd lines stay whole.

    MariaDB's USAGE line carries the password hash: the result is compared, never shown.
    """
    parsed: set[tuple[str, str, bool]] = set()
    for line in lines:
        match = _GRANT.match(line)
        if match is None:
            parsed.add((line, "", False))  # a role or proxy grant: never what we want
            continue
        parsed.add((match["privileges"], match["target"], "WITH GRANT OPTION" in match["rest"]))
    return parsed


def connect(
    host: str, port: int, user: str, password: str, database: str | None = None
) -> MySQLConnection:
    """A pymysql connection with short timeouts and autocommit (DDL commits anyway)."""
    return pymysql.connect(
        host=host,
        port=port,
        user=user,
        password=password,
        database=database,
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=IO_TIMEOUT,
        write_timeout=IO_TIMEOUT,
        charset="utf8mb4",
        autocommit=True,
    )


def master_connection(ctx: Context) -> MySQLConnection:
    """Log in to the shared server with the RDS master secret's credentials."""
    if not ctx.settings.db_master_secret_arn:
        raise TransientError("MasterSecretMissing", MASTER_UNSET)
    master = read_credentials(ctx.clients, ctx.settings.db_master_secret_arn)
    return connect(
        str(master["host"]), int(master["port"]), str(master["username"]), str(master["password"])
    )


def _code(exc: BaseException) -> int | None:
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


@contextmanager
def reachable() -> Iterator[None]:
    """Turn "cannot reach the server" into TransientError; other errors propagate."""
    try:
        yield
    except pymysql.err.OperationalError as exc:
        if _code(exc) in UNREACHABLE_CODES:
            raise TransientError("DatabaseUnreachable", UNREACHABLE) from exc
        raise


def _with_password(cursor: Cursor, sql: str, password: str, what: str) -> None:
    """Run a statement whose parameter is the password; a refusal names only the code.

    MySQL quotes the SQL text near a syntax error, which would include the password.
    """
    try:
        cursor.execute(sql, (password,))
    except pymysql.MySQLError as exc:
        code = _code(exc)
        if code in UNREACHABLE_CODES:
            raise TransientError("DatabaseUnreachable", UNREACHABLE) from None
        raise PermanentError(
            "DatabaseRefused", STATEMENT_FAILED.format(what=what, code=code)
        ) from None


def _state(cursor: Cursor, ctx: Context) -> tuple[bool, bool, bool]:
    """(database exists, user exists, grants are exactly ours), read with the master."""
    cursor.execute(
        "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (ctx.names.database,)
    )
    database = cursor.fetchone() is not None
    cursor.execute(
        "SELECT 1 FROM mysql.user WHERE User = %s AND Host = '%%'", (ctx.names.database_user,)
    )
    user = cursor.fetchone() is not None
    grants = False
    if user:
        cursor.execute(f"SHOW GRANTS FOR {account(ctx.names.database_user)}", ())
        lines = [str(row[0]) for row in cursor.fetchall()]
        grants = parse_grants(lines) == desired_grants(ctx)
    return database, user, grants


class Database:
    """MySQL database and user of one tenant on the shared server (condition "Database")."""

    kind = "Database"
    group = "Database"

    def __init__(
        self, master: MasterConnect = master_connection, connect: Connect = connect
    ) -> None:
        """`master`: opens a master connection per call; `connect`: logs in as the tenant."""
        self._master = master
        self._connect = connect

    @contextmanager
    def _cursor(self, ctx: Context) -> Iterator[Cursor]:
        with reachable(), closing(self._master(ctx)) as conn, conn.cursor() as cursor:
            yield cursor

    def _credentials(self, ctx: Context) -> dict[str, Any] | None:
        """The tenant secret's value, or None when it is not recorded or gone."""
        arn = ctx.ids.get("dbSecretArn")
        if not arn:
            return None
        try:
            return read_credentials(ctx.clients, str(arn))
        except ClientError as exc:
            if aws.is_not_found(exc) or aws.error_code(exc) == "InvalidRequestException":
                return None  # gone, or scheduled for deletion
            raise

    def _password(self, ctx: Context) -> str:
        """The tenant password for create/update: waits for the secret step if needed."""
        if not ctx.ids.get("dbSecretArn"):
            raise TransientError("WaitingForSecret", NOT_RECORDED)
        creds = self._credentials(ctx)
        if creds is None:
            raise TransientError("WaitingForSecret", RECORDED_GONE)
        password = creds.get("password")
        if not password:
            raise TransientError("WaitingForSecret", NO_CREDENTIAL)
        return str(password)

    def _logs_in(self, ctx: Context, creds: Mapping[str, Any]) -> bool:
        """Whether the secret's password opens the tenant's database as the tenant's user."""
        if not (creds.get("password") and creds.get("host") and creds.get("port")):
            return False
        try:
            with reachable():
                conn = self._connect(
                    str(creds["host"]),
                    int(creds["port"]),
                    ctx.names.database_user,
                    str(creds["password"]),
                    ctx.names.database,
                )
        except pymysql.err.OperationalError as exc:
            if _code(exc) in LOGIN_REFUSED_CODES:
                return False
            raise
        conn.close()
        return True

    def observe(self, ctx: Context) -> Observation:
        """Database, user, exact grants, and a login with the secret's password."""
        with self._cursor(ctx) as cursor:
            database, user, grants = _state(cursor, ctx)
        if not database and not user:
            return MISSING
        creds = self._credentials(ctx)
        login = creds is not None and database and user and self._logs_in(ctx, creds)
        problems = []
        if not database:
            problems.append(STALE_DATABASE.format(name=ctx.names.database))
        if not user:
            problems.append(STALE_USER.format(name=ctx.names.database_user))
        elif not grants:
            problems.append(STALE_GRANTS.format(name=ctx.names.database_user))
        if creds is None:
            problems.append(RECORDED_GONE if ctx.ids.get("dbSecretArn") else NOT_RECORDED)
        elif database and user and not login:
            problems.append(STALE_LOGIN.format(name=ctx.names.database_user))
        return Observation(
            exists=True,
            up_to_date=not problems,
            ids={"databaseName": ctx.names.database, "databaseUser": ctx.names.database_user},
            detail="; ".join(problems),
            facts={
                "databaseExists": database,
                "databaseUserExists": user,
                "databaseGrantsExact": grants,
                "databaseLoginOk": bool(login),
            },
        )

    def create(self, ctx: Context) -> None:
        """Create (or adopt) database and user with the secret's password, then grant."""
        password = self._password(ctx)
        with self._cursor(ctx) as cursor:
            cursor.execute(create_database_sql(ctx), ())
            ctx.remember({"databaseName": ctx.names.database})
            _, existed, grants = _state(cursor, ctx)
            _with_password(cursor, create_user_sql(ctx), password, "CREATE USER")
            ctx.remember({"databaseUser": ctx.names.database_user})
            if existed:  # adopted: its password is unknown, set the secret's
                _with_password(cursor, alter_user_sql(ctx), password, "ALTER USER")
            self._fix_grants(cursor, ctx, reset=existed and not grants)
        log.info("created database %s and its user", ctx.names.database)

    def update(self, ctx: Context, observed: Observation) -> None:
        """Re-create what is missing, reset the password and the grants where they differ."""
        password = self._password(ctx)
        with self._cursor(ctx) as cursor:
            database, user, grants = _state(cursor, ctx)
            if not database:
                cursor.execute(create_database_sql(ctx), ())
            if not user:
                _with_password(cursor, create_user_sql(ctx), password, "CREATE USER")
            elif not observed.facts.get("databaseLoginOk"):
                _with_password(cursor, alter_user_sql(ctx), password, "ALTER USER")
            if not grants:
                self._fix_grants(cursor, ctx, reset=user)
        ctx.remember({"databaseName": ctx.names.database, "databaseUser": ctx.names.database_user})
        log.info("repaired database %s and its user", ctx.names.database)

    def _fix_grants(self, cursor: Cursor, ctx: Context, *, reset: bool) -> None:
        """Grant ALL on the tenant's database, first revoking everything else if asked."""
        if reset:
            cursor.execute(revoke_sql(ctx), ())
        cursor.execute(grant_sql(ctx), ())

    def delete(self, ctx: Context) -> None:
        """Drop user and database; archiving first is the engine's job, not this one's."""
        with self._cursor(ctx) as cursor:
            for sql in drop_sql(ctx):
                cursor.execute(sql, ())
        log.info("dropped database %s and its user", ctx.names.database)
