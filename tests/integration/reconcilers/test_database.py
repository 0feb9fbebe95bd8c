"""The tenant database and user against the platform's real MariaDB."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable
from typing import Any

import pymysql
import pytest

from tests.integration.conftest import MakeCtx
from tests.platform.fidelity.rotation import come_due
from wpenv import mysql
from wpenv.aws import Clients
from wpenv.engine import make_context
from wpenv.errors import TransientError
from wpenv.mysql import DatabaseServer, read_credentials
from wpenv.reconcilers.base import MISSING, Context
from wpenv.reconcilers.database import Database
from wpenv.reconcilers.db_secret import DatabaseSecret
from wpenv.settings import Settings

pytestmark = pytest.mark.e2e

Admin = Callable[[], Any]


@pytest.fixture
def admin(platform: dict[str, str]) -> Admin:
    """A connection as the platform's admin (from MYSQL_*), independent of the module."""

    def open_() -> Any:
        return pymysql.connect(
            host=platform["MYSQL_HOST"],
            port=int(platform["MYSQL_TCP_PORT"]),
            user=platform["MYSQL_USER"],
            password=platform["MYSQL_PWD"],
            autocommit=True,
            ssl_ca=platform["WPENV_DB_CA_BUNDLE"],
            ssl_verify_identity=True,
        )

    return open_


def _sql(admin: Admin, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = admin()
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql, args or None)
            return list(cursor.fetchall())
    finally:
        conn.close()


def _login(ctx: Context, clients: Clients, database: str | None = None) -> Any:
    """Log in as the tenant with the credentials in its secret, as WordPress does (TLS)."""
    creds = read_credentials(clients, ctx.ids["dbSecretArn"])
    server = DatabaseServer(creds["host"], int(creds["port"]), creds["username"],
                            creds["password"], ctx.settings.db_ca_bundle)
    return server.connect(database)


def _login_in_clear(ctx: Context, clients: Clients) -> Any:
    """The tenant's login without TLS, which the server must refuse."""
    creds = read_credentials(clients, ctx.ids["dbSecretArn"])
    return pymysql.connect(host=creds["host"], port=int(creds["port"]), user=creds["username"],
                           password=creds["password"], ssl_disabled=True, connect_timeout=5)


def test_create_makes_one_schema_and_one_user_of_the_tenants_names(
    provisioned: Callable[..., Context], admin: Admin
) -> None:
    database = Database()
    ctx = provisioned(create=False)
    database.create(ctx, MISSING)
    database.create(ctx, MISSING)  # no duplicate, still in order
    ids = {"databaseName": ctx.names.database, "databaseUser": ctx.names.database_user}
    assert database.observe(ctx).ids == {**ids, "databaseLoginProven": ctx.ids["dbSecretArn"]}
    schemata = "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s"
    assert _sql(admin, schemata, ctx.names.database) == [(ctx.names.database,)]
    assert _sql(
        admin, "SELECT COUNT(*) FROM mysql.user WHERE User = %s", ctx.names.database_user
    ) == [(1,)]
    database.ensure_absent(ctx)
    assert _sql(admin, schemata, ctx.names.database) == []


def test_a_lost_status_is_stale_until_the_secret_is_known(
    provisioned: Callable[..., Context], make_ctx: MakeCtx
) -> None:
    database = Database()
    ctx = provisioned()
    fresh = make_ctx(tenant=ctx.names.tenant)  # a restarted operator: no recorded ids
    again = database.observe(fresh)
    ids = {"databaseName": ctx.names.database, "databaseUser": ctx.names.database_user}
    assert again.exists and again.ids == {**ids, "databaseLoginProven": None}
    assert not again.up_to_date  # cannot check the password before the secret step ran
    fresh.remember(DatabaseSecret().observe(fresh).ids)  # what the engine does in order
    assert database.observe(fresh).up_to_date


def test_tenant_can_create_a_table_and_insert(
    provisioned: Callable[..., Context], clients: Clients
) -> None:
    ctx = provisioned()
    conn = _login(ctx, clients, ctx.names.database)
    try:
        with conn.cursor() as cursor:
            cursor.execute("CREATE TABLE wp_options (name VARCHAR(64), value TEXT)")
            cursor.execute("INSERT INTO wp_options VALUES (%s, %s)", ("siteurl", "http://x/"))
            cursor.execute("SELECT value FROM wp_options WHERE name = 'siteurl'")
            assert cursor.fetchall() == (("http://x/",),)
            cursor.execute("SELECT @@character_set_database")
            assert cursor.fetchall() == (("utf8mb4",),)
    finally:
        conn.close()


def test_tenants_cannot_see_each_other(
    provisioned: Callable[..., Context], clients: Clients
) -> None:
    # "...-b" and "...ab": `wp_x_b`.* unescaped in GRANT would also match `wp_xab`.
    stem = f"i{uuid.uuid4().hex[:8]}"
    tenant_a = provisioned(f"{stem}-b")
    tenant_b = provisioned(f"{stem}ab")
    assert (tenant_a.names.database, tenant_b.names.database) == (f"wp_{stem}_b", f"wp_{stem}ab")
    conn = _login(tenant_b, clients, tenant_b.names.database)
    try:
        with conn.cursor() as cursor:
            cursor.execute("CREATE TABLE secrets (v TEXT)")
            cursor.execute("INSERT INTO secrets VALUES ('b only')")
    finally:
        conn.close()

    conn = _login(tenant_a, clients)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SHOW DATABASES")
            listed = {row[0] for row in cursor.fetchall()}
            assert tenant_a.names.database in listed
            assert tenant_b.names.database not in listed
            for sql in (
                f"SELECT * FROM `{tenant_b.names.database}`.secrets",
                f"USE `{tenant_b.names.database}`",
            ):
                with pytest.raises(pymysql.err.OperationalError) as denied:
                    cursor.execute(sql)
                assert denied.value.args[0] in (1044, 1142)  # access denied
    finally:
        conn.close()
    with pytest.raises(pymysql.err.OperationalError) as refused:
        _login(tenant_a, clients, tenant_b.names.database).close()
    assert refused.value.args[0] == 1044


@pytest.mark.parametrize(
    ("change", "stale_fact"),
    [
        ("REVOKE ALL PRIVILEGES, GRANT OPTION FROM `{user}`@'%'", "grants"),
        ("GRANT SELECT ON *.* TO `{user}`@'%'", "grants"),
        ("ALTER USER `{user}`@'%' IDENTIFIED BY 'changed-by-hand'", "login"),
        ("ALTER USER `{user}`@'%' REQUIRE NONE", "limits"),
        ("ALTER USER `{user}`@'%' WITH MAX_USER_CONNECTIONS 0", "limits"),
        ("ALTER USER `{user}`@'%' WITH MAX_USER_CONNECTIONS 1000", "limits"),
        ("DROP USER `{user}`@'%'", "user"),
    ],
)
def test_hand_made_changes_are_stale_and_repaired(
    provisioned: Callable[..., Context],
    clients: Clients,
    admin: Admin,
    change: str,
    stale_fact: str,
) -> None:
    database = Database()
    ctx = provisioned()
    _sql(admin, change.format(user=ctx.names.database_user))

    observed = database.observe(ctx)
    assert observed.exists and not observed.up_to_date
    assert not getattr(observed.found, stale_fact)
    password = read_credentials(clients, ctx.ids["dbSecretArn"])["password"]
    assert password not in observed.detail + repr(observed.found)

    database.update(ctx, observed)
    observed = database.observe(ctx)
    assert observed.up_to_date, observed.detail
    conn = _login(ctx, clients, ctx.names.database)
    try:
        with conn.cursor() as cursor:
            cursor.execute("CREATE TABLE IF NOT EXISTS t (v INT)")
            cursor.execute("INSERT INTO t VALUES (1)")
    finally:
        conn.close()


def test_waits_for_the_secret(make_ctx: MakeCtx) -> None:
    ctx = make_ctx()
    with pytest.raises(TransientError) as waiting:
        Database().create(ctx, MISSING)
    assert waiting.value.reason == "WaitingForSecret"


def test_an_unreachable_server_is_transient_and_names_no_credentials(make_ctx: MakeCtx) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    secret_word = "not-a-real-password"
    server = DatabaseServer("127.0.0.1", port, "admin", secret_word)
    database = Database(master=lambda settings, clients: server.connect())
    with pytest.raises(TransientError) as unreachable:
        database.observe(make_ctx())
    assert unreachable.value.reason == "DatabaseUnreachable"
    assert secret_word not in str(unreachable.value)


def _limits(admin: Admin, user: str) -> list[tuple[Any, ...]]:
    return _sql(admin, "SELECT ssl_type, max_user_connections FROM mysql.user "
                "WHERE User = %s AND Host = '%%'", user)


def test_the_user_requires_tls_and_carries_the_cap(
    provisioned: Callable[..., Context], clients: Clients, admin: Admin, settings: Settings
) -> None:
    ctx = provisioned()
    assert _limits(admin, ctx.names.database_user) == [
        ("ANY", settings.db_max_user_connections)
    ]
    conn = _login(ctx, clients, ctx.names.database)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SHOW STATUS LIKE 'Ssl_version'")
            (_, version), = cursor.fetchall()
    finally:
        conn.close()
    assert version in ("TLSv1.2", "TLSv1.3")


def test_a_tenant_login_without_tls_is_refused(
    provisioned: Callable[..., Context], clients: Clients
) -> None:
    ctx = provisioned()
    with pytest.raises(pymysql.err.OperationalError) as refused:
        _login_in_clear(ctx, clients).close()
    assert refused.value.args[0] == 1045  # MariaDB's answer to a login without TLS
    password = read_credentials(clients, ctx.ids["dbSecretArn"])["password"]
    assert password not in str(refused.value)


def test_a_tenant_at_its_cap_still_proves_its_password(
    settings: Settings, clients: Clients, admin: Admin
) -> None:
    """The server checks MAX_USER_CONNECTIONS after the password: 1226 is a good login."""
    capped = settings.model_copy(update={"db_max_user_connections": 1})
    tenant = f"c{uuid.uuid4().hex[:10]}"
    ctx = make_context(namespace="it", name=tenant, spec={"tenantId": tenant},
                       settings=capped, clients=clients, ids={})
    secret, database = DatabaseSecret(), Database()
    secret.create(ctx, secret.observe(ctx))
    try:
        database.create(ctx, database.observe(ctx))
        assert _limits(admin, ctx.names.database_user) == [("ANY", 1)]
        held = _login(ctx, clients, ctx.names.database)
        try:
            with pytest.raises(pymysql.err.OperationalError) as over:
                _login(ctx, clients, ctx.names.database).close()
            assert over.value.args[0] == 1226
            observed = database.observe(ctx)
            assert observed.up_to_date, observed.detail
        finally:
            held.close()
    finally:
        database.ensure_absent(ctx)
        secret.ensure_absent(ctx)


def test_an_untrusted_server_certificate_is_a_tls_failure(
    settings: Settings, clients: Clients
) -> None:
    """The platform's CA is not in the system store: without the bundle nothing connects."""
    untrusting = settings.model_copy(update={"db_ca_bundle": ""})
    with pytest.raises(mysql.TlsFailedError) as failed:
        mysql.master_connection(untrusting, clients)
    assert failed.value.reason == "DatabaseTlsFailed"
    master_password = mysql.master_server(settings, clients).password
    assert master_password not in str(failed.value)
    with pytest.raises(TransientError) as observed:
        Database().observe(make_context(namespace="it", name="tls", spec={"tenantId": "tls"},
                                        settings=untrusting, clients=clients, ids={}))
    assert observed.value.reason == "DatabaseTlsFailed"


def _stages(clients: Clients, arn: str) -> list[list[str]]:
    described = clients.secretsmanager.describe_secret(SecretId=arn)
    return sorted(sorted(stages) for stages in described["VersionIdsToStages"].values())


def test_rotation_is_switched_on_once_the_user_logs_in(
    provisioned: Callable[..., Context], clients: Clients
) -> None:
    """With rotation configured, the pass that makes the user ends with rotation on.

    The platform runs the rotation function's testSecret step (a TLS login with the
    secret); had it failed, an emptied AWSPENDING version would be left beside AWSCURRENT.
    """
    assert clients.settings.db_rotation_lambda_arn, "the platform deploys a rotation function"
    ctx = provisioned(create=False)
    arn = ctx.ids["dbSecretArn"]
    assert not clients.secretsmanager.describe_secret(SecretId=arn).get("RotationEnabled")
    assert DatabaseSecret().observe(ctx).up_to_date  # unproven: rotation waits, not stale

    Database().create(ctx, MISSING)
    assert ctx.ids["databaseLoginProven"] == arn
    described = clients.secretsmanager.describe_secret(SecretId=arn)
    assert described["RotationEnabled"] is True
    assert described["RotationLambdaARN"] == clients.settings.db_rotation_lambda_arn
    assert _stages(clients, arn) == [["AWSCURRENT"]]  # testSecret passed, AWSPENDING gone
    assert DatabaseSecret().observe(ctx).up_to_date
    assert Database().observe(ctx).up_to_date


def _rotated(ctx: Context, clients: Clients, endpoint: str) -> tuple[dict[str, Any], str]:
    """Let the alternating-users rotation come due once: (the value before it, the clone)."""
    arn = ctx.ids["dbSecretArn"]
    before = read_credentials(clients, arn)
    outcome = come_due(endpoint, arn)
    assert outcome["rotated"] is True, outcome
    clone = ctx.names.database_user + "_clone"
    assert read_credentials(clients, arn)["username"] == clone
    return before, clone


def _works(value: dict[str, Any], ctx: Context) -> bool:
    server = DatabaseServer(value["host"], int(value["port"]), value["username"],
                            value["password"], ctx.settings.db_ca_bundle)
    try:
        server.connect(ctx.names.database).close()
    except pymysql.err.OperationalError:
        return False
    return True


def test_after_a_rotation_both_users_are_checked_and_neither_password_is_reset(
    provisioned: Callable[..., Context], clients: Clients, admin: Admin, endpoint: str,
    settings: Settings,
) -> None:
    """The rotation made `<user>_clone` with the user's grants but not its limits: the
    clone's limits are repaired; the secret keeps naming the clone, and the first user
    keeps the password the tasks started before the rotation log in with."""
    ctx = provisioned()
    database = Database()
    before, clone = _rotated(ctx, clients, endpoint)
    assert DatabaseSecret().observe(ctx).up_to_date  # the username is not rewritten back
    observed = database.observe(ctx)
    assert observed.found.clone == clone and observed.found.login
    assert not observed.up_to_date and clone in observed.detail
    assert f"user {clone} does not require TLS" in observed.detail
    database.update(ctx, observed)
    observed = database.observe(ctx)
    assert observed.up_to_date, observed.detail
    assert _limits(admin, clone) == [("ANY", settings.db_max_user_connections)]
    assert _works(before, ctx) and _works(read_credentials(clients, ctx.ids["dbSecretArn"]), ctx)
    assert read_credentials(clients, ctx.ids["dbSecretArn"])["username"] == clone


def test_the_clone_is_repaired_but_the_other_users_password_is_left_alone(
    provisioned: Callable[..., Context], clients: Clients, admin: Admin, endpoint: str,
) -> None:
    """The secret names the clone: a hand-changed clone password is reset to the secret's,
    the clone's grants repaired, and the first user's own password never touched."""
    ctx = provisioned()
    database = Database()
    before, clone = _rotated(ctx, clients, endpoint)
    _sql(admin, f"ALTER USER `{clone}`@'%' IDENTIFIED BY 'changed-by-hand'")
    _sql(admin, f"GRANT SELECT ON *.* TO `{clone}`@'%'")
    _sql(admin, f"GRANT SELECT ON *.* TO `{ctx.names.database_user}`@'%'")
    observed = database.observe(ctx)
    assert not observed.found.login and not observed.found.grants
    database.update(ctx, observed)
    observed = database.observe(ctx)
    assert observed.up_to_date, observed.detail
    assert _works(before, ctx), "the first user's password is the one from before"
    assert _works(read_credentials(clients, ctx.ids["dbSecretArn"]), ctx)


def test_both_users_are_dropped_and_the_orphan_scan_counts_the_clone_with_its_tenant(
    provisioned: Callable[..., Context], clients: Clients, admin: Admin, endpoint: str,
    settings: Settings,
) -> None:
    ctx = provisioned()
    database = Database()
    _, clone = _rotated(ctx, clients, endpoint)
    items = {item.id: item for item in database.managed(clients, settings)}
    assert clone not in items
    item = items[ctx.names.database_user]
    assert item.found.clone == clone and item.found.user == ctx.names.database_user
    assert database.refresh(clients, settings, item) == item
    database.ensure_absent(ctx)
    users = _sql(admin, "SELECT User FROM mysql.user WHERE User IN (%s, %s)",
                 ctx.names.database_user, clone)
    assert users == []
    assert database.refresh(clients, settings, item) is None
