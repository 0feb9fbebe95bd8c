"""The tenant database's SQL and grant checks, without a server."""

from __future__ import annotations

import pytest

from wpenv.engine import make_context
from wpenv.reconcilers import database as db
from wpenv.reconcilers.base import Context
from wpenv.settings import Settings


def _ctx(tenant: str = "acme") -> Context:
    return make_context("ns", tenant, {"tenantId": tenant}, settings=Settings(), clients=None)


def _formatted(sql: str, *args: str) -> str:
    """What pymysql sends: the text %-formatted with the (escaped) parameters."""
    return sql % tuple(f"'{a}'" for a in args)


def test_grant_target_escapes_underscores_so_it_matches_one_database_only() -> None:
    assert db.grant_target("wp_a_b") == "`wp\\_a\\_b`.*"
    assert db.grant_target("wpacme") == "`wpacme`.*"


def test_identifiers_are_validated() -> None:
    with pytest.raises(ValueError, match="identifier"):
        db.grant_target("wp`; DROP DATABASE x; --")
    with pytest.raises(ValueError, match="identifier"):
        db.account("a'@'%")


def test_password_statements_take_it_as_a_parameter() -> None:
    ctx = _ctx("acme-corp")
    create = db.user_sql(ctx).create
    alter = db.user_sql(ctx).alter
    assert _formatted(create, "pw") == (
        "CREATE USER IF NOT EXISTS `wp_acme_corp`@'%' IDENTIFIED BY 'pw' "
        "REQUIRE SSL WITH MAX_USER_CONNECTIONS 50"
    )
    assert _formatted(alter, "pw") == (
        "ALTER USER `wp_acme_corp`@'%' IDENTIFIED BY 'pw' REQUIRE SSL WITH MAX_USER_CONNECTIONS 50"
    )
    assert create.count("%s") == alter.count("%s") == 1


def test_users_require_tls_and_carry_the_settings_cap() -> None:
    settings = Settings(db_max_user_connections=7)
    ctx = make_context("ns", "acme", {"tenantId": "acme"}, settings=settings, clients=None)
    assert db.user_sql(ctx).alter_limits % () == (
        "ALTER USER `wp_acme`@'%' REQUIRE SSL WITH MAX_USER_CONNECTIONS 7"
    )
    assert "MAX_USER_CONNECTIONS 7" in db.user_sql(ctx).create


@pytest.mark.parametrize(
    ("row", "up_to_date"),
    [
        (("ANY", 50), True),
        ((b"ANY", 50), True),  # a server that answers the enum as bytes
        (("", 50), False),  # REQUIRE NONE: a login without TLS would be let in
        (("X509", 50), False),  # not what the operator set
        (("ANY", 0), False),  # no cap
        (("ANY", 51), False),
        (("ANY", None), False),
    ],
)
def test_limits_match_only_require_ssl_with_the_cap(row: tuple[object, object],
                                                     up_to_date: bool) -> None:
    assert db.limits_match(_ctx(), row) is up_to_date


def test_statements_without_parameters_format_to_plain_sql() -> None:
    ctx = _ctx("acme-corp")
    assert db.create_database_sql(ctx) % () == (
        "CREATE DATABASE IF NOT EXISTS `wp_acme_corp` "
        "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    )
    assert db.user_sql(ctx).grant % () == (
        "GRANT ALL PRIVILEGES ON `wp\\_acme\\_corp`.* TO `wp_acme_corp`@'%'"
    )
    assert db.user_sql(ctx).revoke % () == (
        "REVOKE ALL PRIVILEGES, GRANT OPTION FROM `wp_acme_corp`@'%'"
    )
    names = (ctx.names.database, ctx.names.database_user)
    assert [sql % () for sql in db.drop_sql(*names)] == [
        "DROP USER IF EXISTS `wp_acme_corp`@'%'",
        "DROP DATABASE IF EXISTS `wp_acme_corp`",
    ]
    assert [sql % () for sql in db.drop_sql(None, "wp_x")] == ["DROP USER IF EXISTS `wp_x`@'%'"]
    assert [sql % () for sql in db.drop_sql("wp_x", "wp_x", "wp_x_clone")] == [
        "DROP USER IF EXISTS `wp_x`@'%'",
        "DROP USER IF EXISTS `wp_x_clone`@'%'",
        "DROP DATABASE IF EXISTS `wp_x`",
    ]


def test_the_active_user_is_the_one_the_secret_names_if_it_is_the_tenants() -> None:
    ctx = _ctx("acme-corp")
    assert db.active_user(ctx, {"username": "wp_acme_corp_clone"}) == "wp_acme_corp_clone"
    assert db.active_user(ctx, {"username": "wp_acme_corp"}) == "wp_acme_corp"
    assert db.active_user(ctx, {"username": "wp_other"}) == "wp_acme_corp"
    assert db.active_user(ctx, None) == "wp_acme_corp"
    assert db.user_sql(ctx, "wp_acme_corp_clone").alter_limits % () == (
        "ALTER USER `wp_acme_corp_clone`@'%' REQUIRE SSL WITH MAX_USER_CONNECTIONS 50"
    )


def test_a_clone_user_belongs_to_its_tenant_unless_it_is_a_tenant_of_its_own() -> None:
    assert db._is_clone("wp_x_clone", {"wp_x"}, {"wp_x", "wp_x_clone"})
    assert not db._is_clone("wp_x_clone", {"wp_x", "wp_x_clone"}, {"wp_x", "wp_x_clone"})
    assert not db._is_clone("wp_x_clone", set(), {"wp_x_clone"})  # nothing of wp_x left
    assert not db._is_clone("wp_x", {"wp_x"}, {"wp_x"})


MARIADB_GRANTS = [
    "GRANT USAGE ON *.* TO `wp_acme_corp`@`%` IDENTIFIED BY PASSWORD '*0123456789ABCDEF'",
    "GRANT ALL PRIVILEGES ON `wp\\_acme\\_corp`.* TO `wp_acme_corp`@`%`",
]


def test_exact_grants_of_mariadb_and_mysql_match() -> None:
    ctx = _ctx("acme-corp")
    assert db.parse_grants(MARIADB_GRANTS) == db.desired_grants(ctx)
    mysql8 = ["GRANT USAGE ON *.* TO `wp_acme_corp`@`%`", MARIADB_GRANTS[1]]
    assert db.parse_grants(mysql8) == db.desired_grants(ctx)


@pytest.mark.parametrize(
    "lines",
    [
        [MARIADB_GRANTS[0]],  # revoked
        [MARIADB_GRANTS[0], MARIADB_GRANTS[1] + " WITH GRANT OPTION"],
        [*MARIADB_GRANTS, "GRANT SELECT ON *.* TO `wp_acme_corp`@`%`"],
        [MARIADB_GRANTS[0], "GRANT ALL PRIVILEGES ON `wp_acme_corp`.* TO `wp_acme_corp`@`%`"],
        [*MARIADB_GRANTS, "GRANT `some_role` TO `wp_acme_corp`@`%`"],
        [MARIADB_GRANTS[0], "GRANT SELECT, INSERT ON `wp\\_acme\\_corp`.* TO `wp_acme_corp`@`%`"],
    ],
)
def test_any_other_grant_is_stale(lines: list[str]) -> None:
    assert db.parse_grants(lines) != db.desired_grants(_ctx("acme-corp"))
