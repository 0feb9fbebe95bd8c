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
from typing import TYPE_CHECKING, Any

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


class Databases:
    """Tenant databases (`wp_<tenant>`)."""

    name = "Database"

    def find(self, settings: Settings, clients: Any) -> Iterator[Item]:
        """Every `wp_...` schema; tenant derived from the name (refined by the scan)."""
        names = _rows(
            settings, clients,
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE %s",
            (LIKE_WP,),
        )
        for name in sorted(names):
            if TENANT_NAME.fullmatch(name):
                yield Item(self.name, name, "", name.removeprefix("wp_").replace("_", "-"))

    def refresh(self, item: Item, settings: Settings, clients: Any) -> Item | None:
        """The item if the database still exists."""
        found = _rows(
            settings, clients,
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
            (item.id,),
        )
        return item if found else None

    def delete(self, item: Item, settings: Settings, clients: Any) -> None:
        """DROP DATABASE IF EXISTS (cleanup archives it first)."""
        _run(settings, clients, f"DROP DATABASE IF EXISTS {sql_identifier(item.id)}")


class DatabaseUsers:
    """Tenant MySQL users (`wp_<tenant>`@'%')."""

    name = "DatabaseUser"

    def find(self, settings: Settings, clients: Any) -> Iterator[Item]:
        """Every `wp_...`@'%' user."""
        names = _rows(
            settings, clients,
            "SELECT User FROM mysql.user WHERE Host = %s AND User LIKE %s",
            ("%", LIKE_WP),
        )
        for name in sorted(set(names)):
            if TENANT_NAME.fullmatch(name):
                yield Item(self.name, name, "", name.removeprefix("wp_").replace("_", "-"))

    def refresh(self, item: Item, settings: Settings, clients: Any) -> Item | None:
        """The item if the user still exists."""
        found = _rows(
            settings, clients,
            "SELECT User FROM mysql.user WHERE Host = %s AND User = %s",
            ("%", item.id),
        )
        return item if found else None

    def delete(self, item: Item, settings: Settings, clients: Any) -> None:
        """DROP USER IF EXISTS: nobody can log in to the database any more."""
        _run(settings, clients, f"DROP USER IF EXISTS {sql_identifier(item.id)}@'%'")
