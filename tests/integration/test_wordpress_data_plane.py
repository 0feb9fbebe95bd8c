"""The data plane (tests/platform/wordpress.py): a provisioned tenant's tasks are WordPress.

The engine provisions a tenant as the operator does; with the data plane on, its service
becomes ready only once each task, a real WordPress, passes its target group's health
check. The first task installs WordPress into the tenant's own database as the tenant's
own user over TLS; every task answers under the tenant's prefix on its loopback address;
and a revision whose database password is wrong fails its health check: the circuit
breaker rolls the service back.
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pymysql
import pytest

from tests.integration.conftest import MakeCtx
from tests.platform.wordpress import read_tasks
from wpenv import engine
from wpenv.plan import path_prefix
from wpenv.reconcilers.base import Context

pytestmark = pytest.mark.e2e
TIMEOUT = 120.0


class _Keep(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _get(
    url: str, data: dict[str, str] | None = None, host: str | None = None
) -> tuple[int, str, str]:
    """(status, Location, body) of one request, redirects not followed."""
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    opener = urllib.request.build_opener(_Keep)
    # As the load balancer sends it: the client's Host, and that it came over HTTPS.
    headers = {"Host": host, "X-Forwarded-Proto": "https"} if host else {}
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, response.headers.get("Location", ""), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Location", ""), exc.read().decode(errors="replace")


def _provision(ctx: Context) -> None:
    resources = engine.default_resources()
    deadline = time.monotonic() + TIMEOUT
    outcome = engine.converge(ctx, resources)
    while not (outcome.ready or outcome.failure) and time.monotonic() < deadline:
        time.sleep(1.0)
        outcome = engine.converge(ctx, resources)
    assert outcome.failure is None and outcome.ready, outcome.conditions


def _tasks(endpoint: str, ctx: Context, **match: Any) -> list[dict[str, Any]]:
    service = f"{ctx.settings.cluster_name}/{ctx.names.service}"
    return [t for t in read_tasks(endpoint) if t["service"] == service
            and all(t.get(k) == v for k, v in match.items())]


def _master() -> pymysql.connections.Connection[Any]:
    return pymysql.connect(host=os.environ["MYSQL_HOST"], port=int(os.environ["MYSQL_TCP_PORT"]),
                           user=os.environ["MYSQL_USER"], password=os.environ["MYSQL_PWD"],
                           ssl_ca=os.environ["WPENV_DB_CA_BUNDLE"])


def _tables(ctx: Context) -> set[str]:
    with _master() as conn, conn.cursor() as cur:
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema=%s",
                    (ctx.names.database,))
        return {str(row[0]) for row in cur.fetchall()}


def _service(ctx: Context) -> dict[str, Any]:
    found = boto3.client("ecs").describe_services(
        cluster=ctx.settings.cluster_name, services=[ctx.names.service])["services"][0]
    return dict(found)


def _wait(what: str, check: Any, timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(1.0)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def tenant(make_ctx: MakeCtx, data_plane: str) -> Any:
    """A provisioned tenant whose tasks run WordPress; rolled back after the test."""
    ctx = make_ctx(identity={"enabled": False})
    try:
        _provision(ctx)
        yield ctx
    finally:
        engine.roll_back(ctx, engine.default_resources(), engine.Outcome())


def test_each_task_serves_wordpress_from_its_own_database(
    tenant: Context, data_plane: str
) -> None:
    ctx = tenant
    tasks = _tasks(data_plane, ctx, health="healthy")
    assert len(tasks) == ctx.spec.replicas, tasks
    assert all(t["address"].startswith("127.0.0.1:") for t in tasks)
    assert all(t["targetGroups"] for t in tasks), "each task is a target of the tenant's group"
    # The first task installed WordPress into the tenant's own database, as its own user,
    # with the admin of the tenant's site secret; no person ran the installer.
    assert {"wp_options", "wp_users", "wp_posts"} <= _tables(ctx), "installed in its own DB"
    with _master() as conn, conn.cursor() as cur:
        cur.execute(f"SELECT user_login FROM `{ctx.names.database}`.wp_users")
        assert [row[0] for row in cur.fetchall()] == ["wpenv-admin"]
    prefix = path_prefix(ctx.spec)
    for task in tasks:  # WordPress lives under the tenant's prefix, in every task
        base = f"http://{task['address']}"
        status, _, page = _get(base + prefix + "/", host="wp.test")
        assert status == 200 and f"<title>{ctx.names.tenant}" in page, page[:300]
        status, _, page = _get(base + prefix + "/wp-login.php", host="wp.test")
        assert status == 200 and "user_login" in page
        status, _, _ = _get(base + "/wp-login.php")
        assert status == 404, "nothing outside the prefix"
    for task in _tasks(data_plane, ctx):  # what one task costs (README, "Data plane")
        print(f"task {task['taskId']}: installed in {task['installedAfterSeconds']}s, "
              f"listening after {task['listeningAfterSeconds']}s, "
              f"healthy after {task['healthyAfterSeconds']}s, {task['memoryKiB']} KiB")
        assert task["memoryKiB"] and task["memoryKiB"] > 0
    # wp-content is the tenant's directory, seeded with the image's themes.
    themes = Path(ctx.settings.efs_mount_path) / "tenants" / ctx.names.tenant / "themes"
    assert (themes / "twentytwentythree").is_dir()


def test_a_wrong_database_password_fails_health_checks_and_rolls_back(
    tenant: Context, data_plane: str
) -> None:
    ctx = tenant
    ecs = boto3.client("ecs")
    good = _service(ctx)["taskDefinition"]
    definition = ecs.describe_task_definition(taskDefinition=good)["taskDefinition"]
    (container,) = definition["containerDefinitions"]
    # The same revision, but the password is a wrong literal instead of the secret's.
    container["secrets"] = [s for s in container["secrets"]
                            if s["name"] != "WORDPRESS_DB_PASSWORD"]
    container["environment"] = [*container["environment"],
                                {"name": "WORDPRESS_DB_PASSWORD", "value": "wrong"}]
    keys = ("family", "taskRoleArn", "executionRoleArn", "networkMode", "volumes",
            "requiresCompatibilities", "cpu", "memory")
    bad = ecs.register_task_definition(containerDefinitions=[container],
                                       **{k: definition[k] for k in keys})
    bad_arn = bad["taskDefinition"]["taskDefinitionArn"]
    ecs.update_service(cluster=ctx.settings.cluster_name, service=ctx.names.service,
                       taskDefinition=bad_arn)

    def failed() -> bool:
        deployments: list[dict[str, Any]] = _service(ctx)["deployments"]
        return any(d.get("rolloutState") == "FAILED" and d["taskDefinition"] == bad_arn
                   for d in deployments)

    _wait("the circuit breaker", failed)
    events = [e["message"] for e in _service(ctx)["events"]]
    assert any("is unhealthy in (target-group" in m and "[500]" in m for m in events), events

    def rolled_back() -> bool:
        service = _service(ctx)
        primary: dict[str, Any] = service["deployments"][0]
        return bool(primary["taskDefinition"] == good and primary["rolloutState"] == "COMPLETED")

    _wait("the rollback to the working revision", rolled_back)
    tasks = _tasks(data_plane, ctx)
    assert tasks and all(t["taskDefinition"] == good and t["health"] == "healthy"
                         for t in tasks), tasks
