"""Tenant databases and users on the shared MySQL server: found by name, not by tag.

MySQL has no tags, so a database is the operator's when its name has the shape
`names_for(...).database` gives (`wp_` + the tenant id with `_` for `-`), and a user when
it is `wp_...`@'%'. Login is with the RDS master secret, as the Database step does;
identifiers go through `sql_identifier`, and no statement here carries a password.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import closing
from typing import TYPE_CHECKING, Any, ClassVar

from wpenv.orphans.model import Item
from wpenv.plan import sql_identifier
from wpenv.reconcilers.database import connect
from wpenv.reconcilers.db_secret import MASTER_UNSET, read_credentials
from wpenv.settings import Settings

if TYPE_CHECKING:
    from pymysql.connections import Connection
    from pymysql.cursors import Cursor

# wp_ + a DNS label with "_" for "-" (plus, for users, a cut name's `_<8 hex>` suffix).
TENANT_NAME = re.compile(r"^wp_[a-z0-9](?:[a-z0-9_]{0,62}[a-z0-9])?$")
LIKE_WP = "wp\\_%"  # LIKE pattern: `_` is a wildcard unless escaped


class MasterSecretUnsetError(RuntimeError):
    """No master secret configured: the databases cannot be scanned."""


def master_connection(settings: Settings, clients: Any) -> Connection[Cursor]:
    """Log in to the shared server with the RDS master secret's credentials."""
    if not settings.db_master_secret_arn:
        raise MasterSecretUnsetError(MASTER_UNSET)
    master = read_credentials(clients, settings.db_master_secret_arn)
    return connect(
        str(master["host"]), int(master["port"]), str(master["username"]), str(master["password"])
    )


def _rows(settings: Settings, clients: Any, sql: str, args: tuple[str, ...]) -> list[str]:
    with closing(master_connection(settings, clients)) as conn, conn.cursor() as cursor:
        cursor.execute(sql, args)
        return [str(row[0]) for row in cursor.fetchall()]


def _run(settings: Settings, clients: Any, sql: str) -> None:
    with closing(master_connection(settings, clients)) as conn, conn.cursor() as cursor:
        cursor.execute(sql)  # no args: pymysql leaves a literal % alone


class _ByName:
    """Server objects that are the operator's by their `wp_...` name alone.

    Databases and users differ only in their statements, so each gives those and this
    lists, re-checks and drops them the same way.
    """

    name: str
    list_sql: ClassVar[str]  # every name LIKE %s
    exists_sql: ClassVar[str]  # the name = %s, if it still exists
    drop_sql: ClassVar[str]  # {} is the quoted name

    def find(self, settings: Settings, clients: Any) -> Iterator[Item]:
        """Every `wp_...` name; tenant derived from the name (refined by the scan)."""
        names = _rows(settings, clients, self.list_sql, (LIKE_WP,))
        for name in sorted(set(names)):
            if TENANT_NAME.fullmatch(name):
                yield Item(self.name, name, "", name.removeprefix("wp_").replace("_", "-"))

    def refresh(self, item: Item, settings: Settings, clients: Any) -> Item | None:
        """The item if it still exists."""
        return item if _rows(settings, clients, self.exists_sql, (item.id,)) else None

    def delete(self, item: Item, settings: Settings, clients: Any) -> None:
        """Drop it, tolerating that it is gone already."""
        _run(settings, clients, self.drop_sql.format(sql_identifier(item.id)))


class Databases(_ByName):
    """Tenant databases (`wp_<tenant>`); cleanup archives one before it is dropped."""

    name = "Database"
    list_sql = "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE %s"
    exists_sql = "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s"
    drop_sql = "DROP DATABASE IF EXISTS {}"


class DatabaseUsers(_ByName):
    """Tenant MySQL users (`wp_<tenant>`@'%'); once dropped nobody can log in any more."""

    name = "DatabaseUser"
    # `%%`: a literal % once pymysql fills in the argument.
    list_sql = "SELECT User FROM mysql.user WHERE Host = '%%' AND User LIKE %s"
    exists_sql = "SELECT User FROM mysql.user WHERE Host = '%%' AND User = %s"
    drop_sql = "DROP USER IF EXISTS {}@'%'"  # run without args: a literal %
