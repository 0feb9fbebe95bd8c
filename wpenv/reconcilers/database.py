"""The tenant's MySQL database and user on the shared server, managed by plain SQL.

This step runs *after* the DatabaseSecret step, a deliberate swap of the HLD's order: the
password is born in Secrets Manager and this step only reads it from there (the secret
recorded as `dbSecretArn`), so a crash between the two steps never leaves a MySQL user whose
password nobody knows. Until the secret is recorded it waits (`WaitingForSecret`).

The operator logs in through `wpenv.mysql` with the shared RDS master credentials from
the secret named by `db_master_secret_arn` (its only source: MYSQL_* variables are not
read), on the settings' endpoint, over verified TLS. Identifiers go through
`sql_identifier`; the password is always a query parameter, never SQL text. The user gets
ALL on its own database and nothing else; the database name in the GRANT has its `_`
escaped, because GRANT treats `_` as a wildcard and `wp_a_b`.* would also match tenant
"aab"'s `wp_aab`. The user is created `REQUIRE SSL` (the server refuses it a login without
TLS, whatever `require_secure_transport` says) and `WITH MAX_USER_CONNECTIONS` the settings'
cap (one tenant cannot take the shared server's connections); a user that lost either is
stale and repaired with ALTER USER. Whether the secret's password still logs in is checked
by logging in; a login refused only for the tenant's cap (1226) still proves the password,
since the server checks the cap after authenticating.

A login refused with the shared cache's copy of the secret is tried once more with a
fresh read before the user counts as stale: a rotation changes the password outside the
operator, and resetting the user to the cached, older password would undo it.

Secret rotation is AWS's alternating-users MySQL template: the tenant has two users,
`<user>` and `<user>_clone` (the rotation function clones the first on the first
rotation), and the secret's `username` alternates between them. The one the secret names
is the active user: it must exist and log in with the secret's password, and is
created or re-passworded with it when not. The other keeps the previous password, which
the tasks started before the rotation still use until the rollout replaces them, so its
password is never touched; where it exists its grants and limits are checked and repaired
as the active user's are. Both are dropped together.

That login is also the proof secret rotation waits for (wpenv.reconcilers.db_secret): the
secret's ARN is recorded as `databaseLoginProven` while its password logs in, and cleared
when it does not. Right after create or update made or repaired the user, this step logs
in once more and switches rotation on itself, so the pass that made the user ends with
rotation on; a later drift of rotation is the DatabaseSecret step's, which reads the proof
from the status and adds no AWS read to the idle pass.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, NamedTuple

import pymysql
from botocore.exceptions import ClientError
from pymysql.cursors import Cursor

from wpenv import aws, mysql, reasons
from wpenv.errors import PermanentError, TransientError
from wpenv.mysql import (
    DatabaseServer,
    connect,
    error_code,
    is_unreachable,
    reachable,
    server_unreachable,
)
from wpenv.plan import CLONE_SUFFIX, clone_user, sql_identifier
from wpenv.reconcilers.base import Context, Found, Observation, Resource
from wpenv.reconcilers.db_secret import PROVEN, DatabaseSecret, usernames
from wpenv.reconcilers.secret_store import credentials
from wpenv.settings import Settings

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from wpenv.mysql import MySQLConnection

    Connect = Callable[[DatabaseServer, str | None], MySQLConnection]
    MasterConnect = Callable[[Settings, Any], MySQLConnection]

# Access denied (user/password, database), unknown database, host not allowed.
LOGIN_REFUSED_CODES = frozenset({1044, 1045, 1049, 1130, 1698})
# Too many connections of this user (global cap), its MAX_USER_CONNECTIONS reached: both
# raised after the password was accepted, so the login is proven all the same.
CAP_REACHED_CODES = frozenset({1203, 1226})
# The shared cache's entry for the RDS master login (wpenv.reconcilers.observations).
MASTER_OWNER = "shared:database-master"
MASTER_READ = "secretsmanager:GetSecretValue"
# mysql.user.ssl_type of an account created REQUIRE SSL (MySQL 8 and MariaDB alike).
REQUIRE_SSL = "ANY"

NOT_RECORDED = "the database secret is not recorded yet; the DatabaseSecret step makes it"
RECORDED_GONE = "the recorded database secret is gone; the DatabaseSecret step re-creates it"
NO_CREDENTIAL = "the database secret holds no password"
STATEMENT_FAILED = "MySQL refused {what} (error {code})"
STALE_DATABASE = "database {name} does not exist"
STALE_USER = "user {name} does not exist"
STALE_GRANTS = "user {name} has other privileges than ALL on its own database"
STALE_LOGIN = "the secret's password does not log in as {name}"
STALE_LIMITS = "user {name} does not require TLS or has another connection cap than {cap}"

SCHEMA_EXISTS = "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s"
USER_EXISTS = "SELECT 1 FROM mysql.user WHERE User = %s AND Host = '%%'"
USER_LIMITS = (
    "SELECT ssl_type, max_user_connections FROM mysql.user WHERE User = %s AND Host = '%%'"
)
LIST_SCHEMAS = "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE %s"
LIST_USERS = "SELECT User FROM mysql.user WHERE Host = '%%' AND User LIKE %s"
LIKE_WP = "wp\\_%"  # LIKE pattern: `_` is a wildcard unless escaped
# wp_ + a DNS label with "_" for "-" (plus, for users, a cut name's `_<8 hex>` suffix).
TENANT_NAME = re.compile(r"^wp_[a-z0-9](?:[a-z0-9_]{0,62}[a-z0-9])?$")

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


def limits(ctx: Context) -> str:
    """`REQUIRE SSL WITH MAX_USER_CONNECTIONS <cap>`: the same clause in MySQL 8 and MariaDB."""
    cap = int(ctx.settings.db_max_user_connections)  # an int, so safe as SQL text
    return f"REQUIRE SSL WITH MAX_USER_CONNECTIONS {cap}"


class UserSql(NamedTuple):
    """The statements that make the tenant's user what the plan says (no I/O).

    `create` and `alter` take the password as their one parameter; every statement but the
    grants repeats the limits, so any of them restores REQUIRE SSL and the cap.
    """

    create: str
    alter: str
    alter_limits: str  # leaves the password alone
    grant: str  # the one grant the user has: everything on its own database
    revoke: str  # every privilege away, before granting the one we want again


def user_sql(ctx: Context, name: str | None = None) -> UserSql:
    """The statements for the tenant's user, or for `name`, one of its two (see UserSql)."""
    user, clause = account(name or ctx.names.database_user), limits(ctx)
    return UserSql(
        create=f"CREATE USER IF NOT EXISTS {user} IDENTIFIED BY %s {clause}",
        alter=f"ALTER USER {user} IDENTIFIED BY %s {clause}",
        alter_limits=f"ALTER USER {user} {clause}",
        grant=f"GRANT ALL PRIVILEGES ON {grant_target(ctx.names.database)} TO {user}",
        revoke=f"REVOKE ALL PRIVILEGES, GRANT OPTION FROM {user}",
    )


def drop_sql(database: str | None, *users: str | None) -> list[str]:
    """Users first, so nothing can write to the database while it is dropped."""
    return [
        *(f"DROP USER IF EXISTS {account(user)}" for user in users if user),
        *([f"DROP DATABASE IF EXISTS {sql_identifier(database)}"] if database else []),
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


def _with_password(cursor: Cursor, sql: str, password: str, what: str) -> None:
    """Run a statement whose parameter is the password; a refusal names only the code.

    MySQL quotes the SQL text near a syntax error, which would include the password.
    """
    try:
        cursor.execute(sql, (password,))
    except pymysql.MySQLError as exc:
        if is_unreachable(exc):
            raise server_unreachable() from None
        raise PermanentError(
            reasons.DATABASE_REFUSED, STATEMENT_FAILED.format(what=what, code=error_code(exc))
        ) from None


@dataclass(frozen=True)
class Account:
    """One of the tenant's two users as the master sees it."""

    name: str
    grants: bool  # its privileges are exactly ALL on the tenant's database
    limits: bool  # it requires TLS and has the settings' connection cap


@dataclass(frozen=True)
class Schema:
    """What the shared server holds of one tenant: names of what exists, and its state."""

    database: str | None  # the database's name when it exists
    user: str | None  # the user's name when it exists
    grants: bool = False  # every existing user's privileges are exactly ALL on its database
    login: bool = False  # the secret's password logs in as the user the secret names
    limits: bool = False  # every existing user requires TLS and has the connection cap
    clone: str | None = None  # the rotation's `<user>_clone` when it exists
    accounts: tuple[Account, ...] = ()  # the existing users, each with its own state

    def account(self, name: str) -> Account | None:
        """The state of user `name`, when it exists."""
        return next((a for a in self.accounts if a.name == name), None)

    @property
    def name(self) -> str:
        """The name the orphan report shows (the database's, else the user's)."""
        return str(self.database or self.user)


def _account(cursor: Cursor, ctx: Context, name: str) -> Account | None:
    """One user's grants and limits as the master sees them; None when it does not exist."""
    cursor.execute(USER_LIMITS, (name,))
    row = cursor.fetchone()
    if row is None:
        return None
    cursor.execute(f"SHOW GRANTS FOR {account(name)}", ())
    lines = [str(line[0]) for line in cursor.fetchall()]
    return Account(name, parse_grants(lines) == desired_grants(ctx), limits_match(ctx, row))


def _state(cursor: Cursor, ctx: Context) -> Schema | None:
    """The tenant's database and both users as the master sees them; None when none exists."""
    cursor.execute(SCHEMA_EXISTS, (ctx.names.database,))
    database = cursor.fetchone() is not None
    found = [_account(cursor, ctx, name) for name in usernames(ctx.names.database_user)]
    accounts = tuple(a for a in found if a is not None)
    if not (database or accounts):
        return None
    user, clone = (a.name if a else None for a in found)
    return Schema(ctx.names.database if database else None, user,
                  all(a.grants for a in accounts), limits=all(a.limits for a in accounts),
                  clone=clone, accounts=accounts)


def active_user(ctx: Context, creds: Mapping[str, Any] | None) -> str:
    """The user the secret names when it is one of the tenant's two, else the first."""
    named = (creds or {}).get("username")
    return str(named) if named in usernames(ctx.names.database_user) else ctx.names.database_user


def limits_match(ctx: Context, row: Sequence[Any]) -> bool:
    """Whether mysql.user's (ssl_type, max_user_connections) are what `limits` sets."""
    ssl_type, cap = row[0], row[1]
    if isinstance(ssl_type, bytes):
        ssl_type = ssl_type.decode()
    try:
        same_cap = int(cap) == ctx.settings.db_max_user_connections
    except (TypeError, ValueError):
        same_cap = False
    return str(ssl_type).upper() == REQUIRE_SSL and same_cap


class Database(
    Resource,
    group="Database",
    ids=("databaseName", "databaseUser", PROVEN),
    gone={"1049", "1396"},
    needs=("DatabaseSecret",),
    archive="database",
):
    """MySQL database and user of one tenant on the shared server (condition "Database").

    Gone: 1049, unknown database; 1396, DROP USER of a user that is not there. DROP ...
    IF EXISTS makes neither happen, but a hand-dropped database between two statements may.
    """

    def __init__(
        self, master: MasterConnect = mysql.master_connection, connect: Connect = connect
    ) -> None:
        """`master`: opens a master connection per call; `connect`: logs in as the tenant."""
        self._master = master
        self._connect = connect

    def is_gone(self, exc: BaseException) -> bool:
        """MySQL's own error numbers, exactly."""
        return isinstance(exc, pymysql.MySQLError) and str(error_code(exc)) in self.gone

    @contextmanager
    def _cursor(self, settings: Settings, clients: Any,
                ctx: Context | None = None) -> Iterator[Cursor]:
        """A master cursor; with `ctx`, the master login comes through the shared cache."""
        with reachable(), closing(self._open(settings, clients, ctx)) as conn, \
                conn.cursor() as cursor:
            yield cursor

    def _open(self, settings: Settings, clients: Any, ctx: Context | None) -> MySQLConnection:
        """A master connection: the RDS master secret is read once per TTL for every
        environment's observe, and again at once when its password no longer logs in (RDS
        rotated it)."""
        if ctx is None or self._master is not mysql.master_connection:
            return self._master(settings, clients)
        owner, arn = MASTER_OWNER, settings.db_master_secret_arn
        server: DatabaseServer = ctx.observations.read(
            owner, MASTER_READ, arn, lambda: mysql.master_server(settings, clients)
        )
        try:
            return server.connect()
        except pymysql.err.OperationalError as exc:
            if error_code(exc) not in LOGIN_REFUSED_CODES or not ctx.observations.enabled:
                raise
        ctx.observations.changed(owner)
        return mysql.master_server(settings, clients).connect()

    def _credentials(self, ctx: Context) -> dict[str, Any] | None:
        """The tenant secret's value, or None when it is not recorded or gone."""
        arn = ctx.ids.get("dbSecretArn")
        if not arn:
            return None
        try:
            return credentials(ctx, DatabaseSecret.kind, str(arn))
        except ClientError as exc:
            # gone, or scheduled for deletion
            if aws.error_code(exc) in ("ResourceNotFoundException", "InvalidRequestException"):
                return None
            raise

    def _password(self, ctx: Context) -> tuple[str, str]:
        """(active user, its password) for create/update: waits for the secret step."""
        if not ctx.ids.get("dbSecretArn"):
            raise TransientError(reasons.WAITING_FOR_SECRET, NOT_RECORDED)
        creds = self._credentials(ctx)
        if creds is None:
            raise TransientError(reasons.WAITING_FOR_SECRET, RECORDED_GONE)
        password = creds.get("password")
        if not password:
            raise TransientError(reasons.WAITING_FOR_SECRET, NO_CREDENTIAL)
        return active_user(ctx, creds), str(password)

    def _logs_in(self, ctx: Context, creds: Mapping[str, Any]) -> bool:
        """Whether the secret's password opens the tenant's database as the tenant's user.

        On the settings' endpoint over verified TLS, as WordPress must; the secret's own
        host and port are the DatabaseSecret step's to check.
        """
        if not creds.get("password"):
            return False
        server = mysql.login(ctx.settings, active_user(ctx, creds), str(creds["password"]))
        try:
            with reachable():
                conn = self._connect(server, ctx.names.database)
        except pymysql.err.OperationalError as exc:
            if error_code(exc) in CAP_REACHED_CODES:
                return True
            if error_code(exc) in LOGIN_REFUSED_CODES:
                return False
            raise
        conn.close()
        return True

    def find(self, ctx: Context) -> Schema | None:
        """Names are the tenant's, so the master's view is the lookup (no recorded id needed)."""
        with self._cursor(ctx.settings, ctx.clients, ctx) as cursor:
            return _state(cursor, ctx)

    def inspect(self, ctx: Context, found: Schema) -> Observation:
        """Database, user, exact grants, and a login with the secret's password."""
        creds = self._credentials(ctx)
        active = active_user(ctx, creds)
        both = bool(found.database and found.account(active))
        login = creds is not None and both and self._logs_in(ctx, creds)
        if both and creds is not None and not login and ctx.observations.enabled:
            creds, login = self._read_again(ctx)
            active = active_user(ctx, creds)
            both = bool(found.database and found.account(active))
        problems = []
        if not found.database:
            problems.append(STALE_DATABASE.format(name=ctx.names.database))
        if not found.account(active):
            problems.append(STALE_USER.format(name=active))
        problems += _account_problems(ctx, found)
        if creds is None:
            problems.append(RECORDED_GONE if ctx.ids.get("dbSecretArn") else NOT_RECORDED)
        elif both and not login:
            problems.append(STALE_LOGIN.format(name=active))
        return Observation(
            exists=True,
            up_to_date=not problems,
            ids={"databaseName": ctx.names.database, "databaseUser": ctx.names.database_user,
                 PROVEN: ctx.ids.get("dbSecretArn") if login else None},
            detail="; ".join(problems),
            found=replace(found, login=bool(login)),
        )

    def _read_again(self, ctx: Context) -> tuple[dict[str, Any] | None, bool]:
        """The cached value no longer logs in: read the secret again before judging.

        Secrets Manager rotates the password outside the operator, so the shared cache
        may hold the value from before the rotation; "repairing" the user with it would
        undo the rotation and lock out every task started since. When the fresh value
        logs in, the new version is recorded at once for the Service step of this pass.
        """
        ctx.observations.changed(ctx.owner(DatabaseSecret.kind))  # nothing older is served
        creds = self._credentials(ctx)
        login = creds is not None and self._logs_in(ctx, creds)
        if login:
            log.info("the database secret of %s moved on (rotated); following it",
                     ctx.names.database_user)
            DatabaseSecret().record_version(ctx)
        return creds, login

    def create(self, ctx: Context, observed: Observation) -> None:
        """Create (or adopt) database and user with the secret's password, then grant."""
        user, password = self._password(ctx)
        with self._cursor(ctx.settings, ctx.clients) as cursor:
            cursor.execute(create_database_sql(ctx), ())
            ctx.remember({"databaseName": ctx.names.database})
            # Read again inside the same connection: a stale observation must not hide a
            # user an earlier pass made (its password would then stay unknown).
            state = _state(cursor, ctx) or Schema(None, None)
            existed = state.account(user)
            _with_password(cursor, user_sql(ctx, user).create, password, "CREATE USER")
            ctx.remember({"databaseUser": ctx.names.database_user})
            if existed:  # adopted: its password is unknown, set the secret's
                _with_password(cursor, user_sql(ctx, user).alter, password, "ALTER USER")
            _fix_grants(cursor, ctx, user, reset=existed is not None and not existed.grants)
            _repair_other(cursor, ctx, state, clone_user(user))
        log.info("created database %s and its user", ctx.names.database)
        self._prove_and_rotate(ctx, user, password)

    def update(self, ctx: Context, observed: Observation) -> None:
        """Re-create what is missing; reset the password, limits and grants where they
        differ; the other user's limits and grants only, never its password."""
        found: Schema = observed.found
        user, password = self._password(ctx)
        state = found.account(user)
        with self._cursor(ctx.settings, ctx.clients) as cursor:
            if not found.database:
                cursor.execute(create_database_sql(ctx), ())
            if state is None:
                _with_password(cursor, user_sql(ctx, user).create, password, "CREATE USER")
            elif not found.login:
                _with_password(cursor, user_sql(ctx, user).alter, password, "ALTER USER")
            elif not state.limits:
                cursor.execute(user_sql(ctx, user).alter_limits, ())
            if state is None or not state.grants:
                _fix_grants(cursor, ctx, user, reset=state is not None)
            _repair_other(cursor, ctx, found, clone_user(user))
        ctx.remember({"databaseName": ctx.names.database, "databaseUser": ctx.names.database_user})
        log.info("repaired database %s and its user", ctx.names.database)
        self._prove_and_rotate(ctx, user, password)

    def _prove_and_rotate(self, ctx: Context, user: str, password: str) -> None:
        """Log in as the user just made or repaired; once that works, rotation may start.

        Recording the proof first lets DatabaseSecret judge rotation on later passes.
        """
        arn = str(ctx.ids.get("dbSecretArn") or "")
        if not arn or not self._logs_in(ctx, {"username": user, "password": password}):
            return
        ctx.remember({PROVEN: arn})
        DatabaseSecret().rotate_once_proven(ctx, arn)

    def remove(self, clients: Any, settings: Settings, found: Schema) -> None:
        """Drop both users and the database; archiving first is the engine's job."""
        with self._cursor(settings, clients) as cursor:
            for sql in drop_sql(found.database, found.user, found.clone):
                cursor.execute(sql, ())
        log.info("dropped database and users %s", found.name)

    def managed(self, clients: Any, settings: Settings) -> Iterator[Found]:
        """Every `wp_...` database and user: the operator's by name (MySQL has no tags)."""
        with self._cursor(settings, clients) as cursor:
            cursor.execute(LIST_SCHEMAS, (LIKE_WP,))
            databases = {str(row[0]) for row in cursor.fetchall()}
            cursor.execute(LIST_USERS, (LIKE_WP,))
            users = {str(row[0]) for row in cursor.fetchall()}
        clones = {u for u in users if _is_clone(u, databases, users)}
        for name in sorted((databases | users) - clones):
            if TENANT_NAME.fullmatch(name):
                yield _found(name, name in databases, name in users, clone_user(name) in clones)

    def refresh(self, clients: Any, settings: Settings, item: Found) -> Found | None:
        """What of the item still exists (its database, user and the user's clone)."""
        with self._cursor(settings, clients) as cursor:
            cursor.execute(SCHEMA_EXISTS, (item.id,))
            database = cursor.fetchone() is not None
            cursor.execute(USER_EXISTS, (item.id,))
            user = cursor.fetchone() is not None
            cursor.execute(USER_EXISTS, (clone_user(item.id),))
            clone = cursor.fetchone() is not None
        if not (database or user or clone):
            return None
        return _found(item.id, database, user, clone)


def _is_clone(name: str, databases: set[str], users: set[str]) -> bool:
    """Whether user `name` is the rotation's clone of another tenant user, not a tenant's
    own user (a tenant named `x-clone` has its database `wp_x_clone` too)."""
    return (name.endswith(CLONE_SUFFIX) and name not in databases
            and (clone_user(name) in users or clone_user(name) in databases))


def _found(name: str, database: bool, user: bool, clone: bool) -> Found:
    """An orphan-scan item: a tenant's database, user and the user's clone, by name."""
    schema = Schema(name if database else None, name if user else None,
                    clone=clone_user(name) if clone else None)
    return Found(name, schema, {}, {"database": database, "user": user, "clone": clone})


def _account_problems(ctx: Context, found: Schema) -> list[str]:
    """Grants and limits of each existing user (either may be the active one)."""
    problems = []
    for user in found.accounts:
        if not user.grants:
            problems.append(STALE_GRANTS.format(name=user.name))
        if not user.limits:
            problems.append(STALE_LIMITS.format(
                name=user.name, cap=ctx.settings.db_max_user_connections))
    return problems


def _fix_grants(cursor: Cursor, ctx: Context, user: str, *, reset: bool) -> None:
    """Grant ALL on the tenant's database to `user`, first revoking everything else if asked."""
    if reset:
        cursor.execute(user_sql(ctx, user).revoke, ())
    cursor.execute(user_sql(ctx, user).grant, ())


def _repair_other(cursor: Cursor, ctx: Context, found: Schema, other: str) -> None:
    """The user the secret does not name: limits and grants repaired, its password kept
    (tasks started before the last rotation still log in with it)."""
    state = found.account(other)
    if state is None:
        return
    if not state.limits:
        cursor.execute(user_sql(ctx, other).alter_limits, ())
    if not state.grants:
        _fix_grants(cursor, ctx, other, reset=True)
