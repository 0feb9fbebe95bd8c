"""A real WordPress answers at the tenant's URL, end to end (issue: a site at every URL).

The user side is kubectl only; the site side is an HTTP client that reaches the load
balancers as `curl --cacert "$WPENV_CA_BUNDLE" --resolve $WPENV_ALB_RESOLVE` does
(tests/platform/site.py), through the platform's load balancer on loopback, which routes
by the listener rules in the emulator to the tasks its health checks found healthy. The
data plane is on for these tests only: each task is a real WordPress.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pymysql
import pytest

from tests.e2e import envs
from tests.platform import kube, wordpress
from tests.platform.fidelity import rotation
from tests.platform.site import Answer, SiteClient

pytestmark = pytest.mark.e2e

TASK_HEADER = "X-Wpenv-Task"
DEFAULT_ANSWER = "No WordPress environment here."  # the pool listeners' default (aws.py)
RESUME_SECONDS = 300  # HLD: a resumed environment serves again within 5 minutes


def _active(obj: envs.Obj) -> bool:
    return envs.phase(obj) == "Active" and envs.condition(obj, "Ready").get("status") == "True"


@pytest.fixture
def site(
    platform: dict[str, str], operator: subprocess.Popen[bytes], namespace: str, data_plane: str
) -> Iterator[envs.Obj]:
    """An Active environment with two WordPress tasks; deleted after the test."""
    tenant = envs.tenant()
    envs.apply(platform, namespace, "site", tenantId=tenant, replicas=2)
    envs.wait_ready(platform, namespace, "site", timeout=300)
    try:
        yield envs.get(platform, namespace, "site")
    finally:
        kube.kubectl("delete", "wpenv", "site", "-n", namespace, "--wait=true",
                     "--timeout=180s", env=platform, timeout=200)


def _serving(endpoint: str, obj: envs.Obj) -> set[str]:
    """The ids of the environment's healthy tasks, as the data plane reports them."""
    arn = obj["status"]["resources"]["targetGroupArn"]
    return {t["taskId"] for t in wordpress.read_tasks(endpoint)
            if arn in t["targetGroups"] and t["health"] == "healthy"}


def _links(page: str) -> list[str]:
    """Every absolute http(s) URL in the page's href and src attributes."""
    return re.findall(r"""(?:href|src)=["'](https?://[^"']+)["']""", page)


def _admin(obj: envs.Obj) -> tuple[str, str]:
    """The admin's login from the tenant's site secret, as an operator of the site reads it."""
    arn = obj["status"]["resources"]["siteSecretArn"]
    value = json.loads(
        boto3.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"])
    return str(value["admin_user"]), str(value["admin_password"])


def _sign_in(client: SiteClient, url: str, user: str, password: str) -> Answer:
    client.get(url + "wp-login.php")  # WordPress's test cookie first, as a browser has it
    return client.post(url + "wp-login.php", {
        "log": user, "pwd": password, "wp-submit": "Log In",
        "redirect_to": url + "wp-admin/", "testcookie": "1",
    })


def test_the_tenant_url_serves_wordpress_from_both_tasks(
    platform: dict[str, str], data_plane: str, site: envs.Obj
) -> None:
    url = site["status"]["url"]
    tenant = site["spec"]["tenantId"]
    assert url.startswith("https://") and url.endswith(f"/{tenant}/"), url
    client = SiteClient(platform)
    front = client.get(url)
    assert front.status == 200 and front.title.startswith(tenant), (front.status, front.title)
    host = url.split("/")[2]
    ours = [link for link in _links(front.body) if link.split("/")[2] == host]
    assert ours, "the front page links to the site itself"
    outside = [x for x in ours if not (x.startswith(url) or x == url.rstrip("/"))]
    assert not outside, outside  # home_url() itself comes without the trailing slash
    login = client.get(url + "wp-login.php")
    assert login.status == 200 and 'name="log"' in login.body
    # Plain HTTP is redirected to HTTPS, path kept.
    plain = client.get(url.replace("https://", "http://", 1) + "wp-login.php", follow=False)
    assert plain.status == 301 and plain.headers["Location"] == url + "wp-login.php"
    answered = Counter(client.get(url).headers.get(TASK_HEADER) for _ in range(10))
    assert set(answered) == _serving(data_plane, site) and len(answered) == 2, answered


def test_a_sign_in_holds_across_both_tasks(
    platform: dict[str, str], data_plane: str, site: envs.Obj
) -> None:
    url = site["status"]["url"]
    user, password = _admin(site)
    client = SiteClient(platform)
    signed_in = _sign_in(client, url, user, password)
    assert signed_in.status == 200 and "wp-admin" in signed_in.url, signed_in.url
    assert any(c.name.startswith("wordpress_logged_in_") for c in client.cookies)
    answered: Counter[str | None] = Counter()
    for _ in range(20):
        page = client.get(url + "wp-admin/", follow=False)
        assert page.status == 200, (page.status, page.headers.get("Location"))
        assert "Dashboard" in page.title, page.title
        answered[page.headers.get(TASK_HEADER)] += 1
    assert len(answered) == 2 and min(answered.values()) >= 5, answered
    stranger = SiteClient(platform)  # no cookies: the admin is not open to anyone
    assert stranger.get(url + "wp-admin/", follow=False).status == 302


def _posts(database: str) -> list[str]:
    """The post titles in one tenant's database, read as the MariaDB admin."""
    with pymysql.connect(host=os.environ["MYSQL_HOST"], port=int(os.environ["MYSQL_TCP_PORT"]),
                         user=os.environ["MYSQL_USER"], password=os.environ["MYSQL_PWD"],
                         ssl_ca=os.environ["WPENV_DB_CA_BUNDLE"]) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT post_title FROM `{database}`.wp_posts")
        return [str(row[0]) for row in cur.fetchall()]


def test_a_post_lands_in_the_tenants_own_database_only(
    platform: dict[str, str], data_plane: str, site: envs.Obj, namespace: str
) -> None:
    other = envs.provision(platform, namespace, "other", tenantId=envs.tenant(), replicas=1)
    try:
        url = site["status"]["url"]
        client = SiteClient(platform)
        user, password = _admin(site)
        assert _sign_in(client, url, user, password).status == 200
        nonce = client.get(url + "wp-admin/admin-ajax.php?action=rest-nonce").body.strip()
        title = f"Written through the load balancer {uuid.uuid4().hex[:8]}"
        made = client.post(url + "?rest_route=/wp/v2/posts",
                           {"title": title, "status": "publish", "content": "Hello."},
                           headers={"X-WP-Nonce": nonce})
        assert made.status == 201, (made.status, made.body[:300])
        mine = site["status"]["resources"]["databaseName"]
        theirs = other["status"]["resources"]["databaseName"]
        assert title in _posts(mine)
        assert title not in _posts(theirs)
        assert title in client.get(url).body, "the front page lists it"
    finally:
        kube.kubectl("delete", "wpenv", "other", "-n", namespace, "--wait=true",
                     "--timeout=180s", env=platform, timeout=200)


def test_suspend_answers_the_listener_default_and_resume_serves_again(
    platform: dict[str, str], data_plane: str, site: envs.Obj, namespace: str
) -> None:
    url = site["status"]["url"]
    client = SiteClient(platform)
    assert client.get(url).status == 200
    envs.patch(platform, namespace, "site", {"suspended": True})
    envs.wait_for(platform, namespace, "site", lambda o: envs.phase(o) == "Suspended",
                  what="phase Suspended")
    suspended = client.get(url)
    assert (suspended.status, suspended.body) == (404, DEFAULT_ANSWER)
    assert TASK_HEADER not in suspended.headers, "no WordPress answered"

    started = time.monotonic()
    envs.patch(platform, namespace, "site", {"suspended": False})
    envs.wait_for(platform, namespace, "site", _active, timeout=RESUME_SECONDS,
                  what="Active again")
    answer = client.get(url)
    while answer.status != 200 and time.monotonic() - started < RESUME_SECONDS:
        time.sleep(1.0)
        answer = client.get(url)
    assert answer.status == 200 and answer.title.startswith(site["spec"]["tenantId"])
    print(f"resumed and serving after {time.monotonic() - started:.1f}s")


def test_scale_to_three_gives_a_third_serving_target(
    platform: dict[str, str], data_plane: str, site: envs.Obj, namespace: str
) -> None:
    url = site["status"]["url"]
    kube.kubectl("scale", "wpenv/site", "-n", namespace, "--replicas=3", env=platform)
    envs.wait_for(platform, namespace, "site",
                  lambda o: _active(o) and o["status"].get("readyReplicas") == 3,
                  timeout=180, what="three ready replicas")
    client = SiteClient(platform)

    def three() -> set[str | None]:
        return {client.get(url).headers.get(TASK_HEADER) for _ in range(9)}

    deadline = time.monotonic() + 60
    answered = three()
    while len(answered) < 3 and time.monotonic() < deadline:
        time.sleep(1.0)
        answered = three()
    assert answered == _serving(data_plane, site) and len(answered) == 3, answered


def test_an_image_update_keeps_serving(
    platform: dict[str, str], data_plane: str, site: envs.Obj, namespace: str
) -> None:
    """Zero failed requests in a loop across the whole rollout."""
    url = site["status"]["url"]
    stop = threading.Event()
    statuses: Counter[int] = Counter()
    tasks: set[str | None] = set()

    def loop() -> None:
        client = SiteClient(platform)
        while not stop.is_set():
            answer = client.get(url, follow=False)
            statuses[answer.status] += 1
            tasks.add(answer.headers.get(TASK_HEADER))

    worker = threading.Thread(target=loop, daemon=True)
    worker.start()
    try:
        before = _serving(data_plane, site)
        envs.patch(platform, namespace, "site", {"image": "wordpress:6.8.1-apache"})
        envs.wait_for(platform, namespace, "site",
                      lambda o: _active(o) and _rolled(data_plane, o, before),
                      timeout=240, what="the new revision's tasks serving")
        time.sleep(2.0)  # a few requests more on the new tasks alone
    finally:
        stop.set()
        worker.join(timeout=60)
    assert set(statuses) == {200} and statuses[200] > 20, statuses
    assert tasks - before, "the new tasks answered too"


def _rolled(endpoint: str, obj: envs.Obj, before: set[str]) -> bool:
    now = _serving(endpoint, obj)
    return len(now) == 2 and not now & before



@dataclass(frozen=True)
class Sent:
    """One request of a loop: when it left, what came back, and which task answered."""

    at: float
    status: int
    task: str | None


def test_a_password_rotation_rolls_the_service_and_the_site_keeps_serving(
    platform: dict[str, str], data_plane: str, site: envs.Obj, namespace: str
) -> None:
    """The secret's 30 days come due: the alternating-users rotation gives the other user
    (`<user>_clone`, cloned on this first rotation) a new password and moves the secret to
    it, so the old tasks keep logging in as the first user while the operator rolls the
    service onto the clone. Not one request fails: before, during or after the rollout."""
    url = site["status"]["url"]
    arn = site["status"]["resources"]["dbSecretArn"]
    version = site["status"]["resources"]["dbSecretVersion"]
    sent: list[Sent] = []
    stop = threading.Event()

    def loop() -> None:
        client = SiteClient(platform)
        while not stop.is_set():
            at = time.monotonic()
            answer = client.get(url, follow=False)
            sent.append(Sent(at, answer.status, answer.headers.get(TASK_HEADER)))

    before = _serving(data_plane, site)
    worker = threading.Thread(target=loop, daemon=True)
    worker.start()
    try:
        time.sleep(2.0)
        rotated_at = time.monotonic()
        outcome = rotation.come_due(data_plane, arn)
        assert outcome["rotated"] is True and outcome["version"] != version, outcome
        envs.wait_for(
            platform, namespace, "site",
            lambda o: o["status"]["resources"].get("dbSecretVersion") == outcome["version"],
            timeout=120, what="the operator noticed the new version")
        noticed_at = time.monotonic()
        rolled = envs.wait_for(platform, namespace, "site",
                               lambda o: _active(o) and _rolled(data_plane, o, before),
                               timeout=240, what="the service rolled onto the new password")
        rolled_at = time.monotonic()
        time.sleep(3.0)  # a few requests more on the new tasks alone
    finally:
        stop.set()
        worker.join(timeout=60)
    failed = [x for x in sent if x.status != 200]
    window = [x for x in sent if rotated_at <= x.at <= rolled_at]
    print(f"rotation to rollout: {rolled_at - rotated_at:.1f}s (noticed after "
          f"{noticed_at - rotated_at:.1f}s); {len(failed)} of "
          f"{len(window)} requests in it failed, {len(sent)} sent in all: "
          f"{Counter((x.status, x.task in before) for x in failed)}")
    assert not failed, "every request served, across the rotation and the rollout"
    assert sum(1 for x in window if x.task in before) > 5, "old tasks served after it"
    new = {x.task for x in sent if x.task not in before}
    assert new and sum(1 for x in sent if x.at > rolled_at) > 5
    # The secret alternated to the clone, which the old user's tasks never needed.
    value = json.loads(boto3.client("secretsmanager").get_secret_value(
        SecretId=arn)["SecretString"])
    assert value["username"] == rolled["status"]["resources"]["databaseUser"] + "_clone"
    assert value["masterarn"] == os.environ["WPENV_DB_ROTATION_MASTER_SECRET_ARN"]
    # The operator's doing: the service carries the version its new tasks read.
    ecs = boto3.client("ecs")
    service = ecs.describe_services(cluster=os.environ["WPENV_CLUSTER_NAME"],
                                    services=[rolled["status"]["resources"]["serviceArn"]],
                                    include=["TAGS"])["services"][0]
    tags = {t["key"]: t["value"] for t in service.get("tags") or []}
    assert tags["wpenv.bbws.io/db-secret-version"] == outcome["version"]
