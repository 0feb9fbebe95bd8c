"""What a tenant's WordPress holds, end to end: its SSO settings, its uploads, its archive.

The data plane is on (tests/platform/wordpress.py): every task is a real WordPress with the
environment ECS would give the container. The user side is kubectl; the site is reached
through the platform's load balancers (tests/platform/site.py), as a browser would; AWS is
read with plain boto3, as an auditor would.

- The single sign-on settings are read from a running task (its process's environment and
  the WordPress it serves), not from the operator's plan, and compared with the tenant's
  Cognito pool as AWS names its endpoints ("Identity provider and relying party
  endpoints", "The managed login sign-out endpoint: /logout" in the Cognito developer
  guide; the issuer format in the API reference's IssuerConfigurationType).
- An upload goes through WordPress's REST API as the tenant's admin and must land in the
  directory of the tenant's EFS access point, and nowhere in another tenant's.
- After `kubectl delete` the archive in S3 gives back the post (from the SQL dump, loaded
  into a scratch database) and the upload (from the tar) byte for byte.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import struct
import subprocess
import tarfile
import urllib.request
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest

from tests.e2e import data, envs
from tests.platform import kube, wordpress
from tests.platform.site import SiteClient
from wpenv import sso

pytestmark = pytest.mark.e2e

ROLE_HOOK = "openid-connect-generic-update-user-using-current-claim"


def _provision(platform: dict[str, str], namespace: str, name: str, replicas: int) -> envs.Obj:
    """An Active environment whose tasks are real WordPress."""
    envs.apply(platform, namespace, name, tenantId=envs.tenant(), replicas=replicas)
    envs.wait_ready(platform, namespace, name, timeout=300)
    return envs.get(platform, namespace, name)


def _delete(platform: dict[str, str], namespace: str, name: str) -> None:
    kube.kubectl("delete", "wpenv", name, "-n", namespace, "--ignore-not-found",
                 "--wait=true", "--timeout=180s", env=platform, timeout=200)


@pytest.fixture
def site(
    platform: dict[str, str], operator: subprocess.Popen[bytes], namespace: str, data_plane: str
) -> Iterator[envs.Obj]:
    """An Active environment with two WordPress tasks; deleted after the test if still there."""
    try:
        yield _provision(platform, namespace, "site", replicas=2)
    finally:
        _delete(platform, namespace, "site")


# --- the single sign-on settings of a running task ------------------------------------------


def _running_task(endpoint: str, obj: envs.Obj) -> dict[str, Any]:
    """One healthy task of the environment, as the data plane reports it."""
    arn = obj["status"]["resources"]["targetGroupArn"]
    tasks = [t for t in wordpress.read_tasks(endpoint)
             if arn in t["targetGroups"] and t["health"] == "healthy" and t["pid"]]
    assert tasks, "a healthy task"
    return tasks[0]


def _process(pid: int) -> tuple[dict[str, str], list[str]]:
    """(environment, PHP options before `-S`) of the task's server process."""
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    environment = dict(item.decode().split("=", 1) for item in raw if b"=" in item)
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    return environment, argv[1:argv.index("-S")]


# Loads the task's WordPress (its wp-config.php evaluates WORDPRESS_CONFIG_EXTRA), reports
# the plugin's constants (the client secret only as a digest), the redirect URI the plugin
# would send, and what the role hook does to a user whose ID token says Viewer and Editor.
PROBE = """<?php
$url = parse_url((string) getenv('WPENV_SITE_URL'));
$_SERVER['HTTP_HOST'] = $url['host'];
$_SERVER['HTTPS'] = 'on';
require $argv[1] . '/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/user.php';
$constants = array();
foreach (json_decode($argv[2], true) as $name) {
    $constants[$name] = defined($name) ? constant($name) : null;
}
$constants['OIDC_CLIENT_SECRET'] = hash('sha256', (string) $constants['OIDC_CLIENT_SECRET']);
$login = 'sso-probe-' . wp_generate_password(8, false);
$id = wp_insert_user(array('user_login' => $login, 'user_pass' => wp_generate_password(),
                           'user_email' => $login . '@example.com', 'role' => 'subscriber'));
update_user_meta($id, 'openid-connect-generic-last-id-token-claim',
                 array('cognito:groups' => array('Viewer', 'Editor')));
do_action('@HOOK@', get_user_by('id', $id), array());
$roles = get_userdata($id)->roles;
wp_delete_user($id);
echo json_encode(array(
    'constants' => $constants,
    'redirect' => admin_url('admin-ajax.php?action=openid-connect-authorize'),
    'hooked' => has_action('@HOOK@'),
    'roles' => array_values($roles),
));
""".replace("@HOOK@", ROLE_HOOK)


def _probe(task: dict[str, Any], tmp_path: Path) -> tuple[dict[str, str], dict[str, Any]]:
    """(the task's environment, what PROBE saw) with exactly the task's environment."""
    environment, options = _process(int(task["pid"]))
    script = tmp_path / "probe.php"
    script.write_text(PROBE)
    done = subprocess.run(
        ["php", *options, str(script), task["siteDir"], json.dumps(sso.PLUGIN_CONSTANTS)],
        env=environment, cwd=task["siteDir"], capture_output=True, text=True, timeout=120,
        check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    seen: dict[str, Any] = json.loads(done.stdout[done.stdout.index("{"):])
    return environment, seen


def test_the_sso_settings_of_a_running_task_parse_and_name_the_tenants_pool(
    platform: dict[str, str], data_plane: str, site: envs.Obj, tmp_path: Path
) -> None:
    environment, seen = _probe(_running_task(data_plane, site), tmp_path)
    # The PHP the image evaluates parses as it stands in the container's environment.
    extra = tmp_path / "config-extra.php"
    extra.write_text("<?php\n" + environment[sso.CONFIG_EXTRA_VARIABLE])
    lint = subprocess.run(["php", "-l", str(extra)], capture_output=True, text=True, check=False)
    assert lint.returncode == 0 and "No syntax errors" in lint.stdout, lint.stdout + lint.stderr

    ids = site["status"]["resources"]
    cognito = boto3.client("cognito-idp")
    pool = cognito.describe_user_pool(UserPoolId=ids["userPoolId"])["UserPool"]
    region = pool["Arn"].split(":")[3]
    domain = cognito.describe_user_pool_domain(Domain=ids["userPoolDomain"])["DomainDescription"]
    assert domain["UserPoolId"] == pool["Id"]
    client = cognito.describe_user_pool_client(
        UserPoolId=pool["Id"], ClientId=ids["userPoolClientId"])["UserPoolClient"]
    base = f"https://{domain['Domain']}.auth.{region}.amazoncognito.com"  # a prefix domain

    constants = seen["constants"]
    assert constants["OIDC_CLIENT_ID"] == client["ClientId"]
    assert constants["OIDC_CLIENT_SECRET"] == hashlib.sha256(
        client["ClientSecret"].encode()).hexdigest(), "the client secret of the pool's client"
    assert constants["OIDC_ENDPOINT_LOGIN_URL"] == f"{base}/oauth2/authorize"
    assert constants["OIDC_ENDPOINT_TOKEN_URL"] == f"{base}/oauth2/token"
    assert constants["OIDC_ENDPOINT_USERINFO_URL"] == f"{base}/oauth2/userInfo"
    logout = urlsplit(constants["OIDC_ENDPOINT_LOGOUT_URL"])
    assert f"{logout.scheme}://{logout.netloc}{logout.path}" == f"{base}/logout"
    query = parse_qs(logout.query)
    assert query["client_id"] == [client["ClientId"]]
    assert len(query["logout_uri"]) == 1 and query["logout_uri"][0] in client["LogoutURLs"]
    assert set(constants["OIDC_CLIENT_SCOPE"].split()) <= set(client["AllowedOAuthScopes"])
    assert "openid" in constants["OIDC_CLIENT_SCOPE"].split()
    assert constants["OIDC_LOGIN_TYPE"] == "button"
    # The tokens' issuer; the pool's keys are below it (/.well-known/jwks.json).
    assert environment[sso.ISSUER_VARIABLE] == (
        f"https://cognito-idp.{region}.amazonaws.com/{pool['Id']}")
    # Cognito sends the browser back only to a callback URL of the client: the one the
    # plugin asks for, as WordPress builds it under the tenant's prefix.
    assert seen["redirect"] in client["CallbackURLs"], (seen["redirect"], client["CallbackURLs"])
    assert seen["redirect"].startswith(site["status"]["url"])
    # The role map applies at sign-in: Editor outranks Viewer (the groups' precedence).
    assert seen["hooked"] is not False and seen["roles"] == ["editor"], seen["roles"]


# --- uploads and the archive -------------------------------------------------------------


def _png(seed: bytes) -> bytes:
    """A small valid PNG (8x8 RGB) whose pixels come from `seed`: unique bytes per test."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    pixels = hashlib.shake_256(seed).digest(8 * 8 * 3)
    rows = b"".join(b"\0" + pixels[y * 24:(y + 1) * 24] for y in range(8))
    header = struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


def _admin_client(platform: dict[str, str], obj: envs.Obj) -> tuple[SiteClient, str]:
    """A browser signed in as the tenant's admin, and its REST nonce."""
    arn = obj["status"]["resources"]["siteSecretArn"]
    secret = json.loads(
        boto3.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"])
    url = obj["status"]["url"]
    client = SiteClient(platform)
    client.get(url + "wp-login.php")  # WordPress's test cookie first, as a browser has it
    signed_in = client.post(url + "wp-login.php", {
        "log": secret["admin_user"], "pwd": secret["admin_password"], "wp-submit": "Log In",
        "redirect_to": url + "wp-admin/", "testcookie": "1"})
    assert signed_in.status == 200 and "wp-admin" in signed_in.url, signed_in.url
    nonce = client.get(url + "wp-admin/admin-ajax.php?action=rest-nonce").body.strip()
    return client, nonce


def _upload(platform: dict[str, str], obj: envs.Obj, name: str, body: bytes) -> str:
    """Upload through WordPress's media endpoint as the admin; the file's path below
    `wp-content/uploads/`."""
    client, nonce = _admin_client(platform, obj)
    made = client.request(obj["status"]["url"] + "?rest_route=/wp/v2/media", body, headers={
        "X-WP-Nonce": nonce, "Content-Type": "image/png",
        "Content-Disposition": f'attachment; filename="{name}"'})
    assert made.status == 201, (made.status, made.body[:500])
    source = str(json.loads(made.body)["source_url"])
    assert source.startswith(obj["status"]["url"] + "wp-content/uploads/"), source
    return source.partition("/wp-content/uploads/")[2]


def _access_point(obj: envs.Obj) -> tuple[Path, tuple[int, int]]:
    """The tenant's directory (the platform's EFS joined with its access point's root) and
    the POSIX user the access point enforces."""
    point = boto3.client("efs").describe_access_points(
        AccessPointId=obj["status"]["resources"]["accessPointId"])["AccessPoints"][0]
    path = str(point["RootDirectory"]["Path"])
    user = point["PosixUser"]
    return (Path(os.environ["WPENV_EFS_MOUNT_PATH"]) / path.strip("/"),
            (int(user["Uid"]), int(user["Gid"])))


def _can_list(directory: Path, identity: tuple[int, int]) -> bool:
    """Whether a process with `identity` (a tenant's PHP, say) may list `directory`."""
    uid, gid = identity
    done = subprocess.run(["ls", str(directory)], user=uid, group=gid, extra_groups=[],
                          capture_output=True, check=False)
    return done.returncode == 0


def _from_each_task(endpoint: str, obj: envs.Obj, path: str) -> dict[str, bytes]:
    """Task id -> the bytes GET `path` answers, asked of each healthy task directly."""
    arn = obj["status"]["resources"]["targetGroupArn"]
    found = {}
    for task in wordpress.read_tasks(endpoint):
        if arn in task["targetGroups"] and task["health"] == "healthy":
            with urllib.request.urlopen(f"http://{task['address']}{path}", timeout=30) as got:
                found[str(task["taskId"])] = got.read()
    return found


def test_an_upload_lands_in_the_tenants_own_directory_only(
    platform: dict[str, str], data_plane: str, site: envs.Obj, namespace: str
) -> None:
    other = _provision(platform, namespace, "other", replicas=1)
    try:
        body = _png(uuid.uuid4().bytes)
        name = f"upload-{uuid.uuid4().hex[:8]}.png"
        stored = _upload(platform, site, name, body)
        (mine, identity), (theirs, their_identity) = _access_point(site), _access_point(other)
        assert mine != theirs and site["spec"]["tenantId"] in mine.parts
        assert (mine / "uploads" / stored).read_bytes() == body
        if os.geteuid() == 0:  # the platform then runs each task as EFS would
            # Written through the access point: owned by the user it enforces.
            for path in (mine / "uploads" / stored, (mine / "uploads" / stored).parent):
                assert (path.stat().st_uid, path.stat().st_gid) == identity, path
            # Neither tenant's identity may read the other's directory.
            assert identity != their_identity
            assert _can_list(mine, identity) and not _can_list(theirs, identity)
        assert (theirs / "plugins").is_dir(), "the other tenant's directory is in use"
        assert [p for p in theirs.rglob("*") if p.name.startswith(name[:-4])] == []
        # The load balancer serves it, and so does every task: they share the directory.
        url = site["status"]["url"] + "wp-content/uploads/" + stored
        answer = SiteClient(platform).get(url)
        assert answer.status == 200 and answer.headers["Content-Length"] == str(len(body))
        served = _from_each_task(data_plane, site, urlsplit(url).path)
        assert len(served) == 2 and set(served.values()) == {body}, list(served)
    finally:
        _delete(platform, namespace, "other")


POST_CONTENT = ("<p>Kept for the archive: ünïcode ✓, \"double\" and 'single' quotes, "
                "a back\\slash, &amp; an ampersand.</p>\n<p>A second line.</p>")


def _write_post(platform: dict[str, str], obj: envs.Obj, title: str) -> int:
    client, nonce = _admin_client(platform, obj)
    made = client.post(obj["status"]["url"] + "?rest_route=/wp/v2/posts",
                       {"title": title, "status": "publish", "content": POST_CONTENT},
                       headers={"X-WP-Nonce": nonce})
    assert made.status == 201, (made.status, made.body[:500])
    return int(json.loads(made.body)["id"])


def _post_content(database: str, post_id: int) -> bytes:
    """wp_posts.post_content of one post, as bytes, read as the MariaDB admin."""
    with data.master() as conn, conn.cursor() as cur:
        cur.execute(f"SELECT CAST(post_content AS BINARY) FROM `{database}`.wp_posts "
                    "WHERE ID=%s", (post_id,))
        row = cur.fetchone()
    assert row is not None, f"post {post_id} in {database}"
    return bytes(row[0])


def _restored_post(dump: bytes, post_id: int) -> bytes:
    """The post's content after loading the archived dump into a scratch database."""
    scratch = f"r_{uuid.uuid4().hex[:12]}"
    with data.master() as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{scratch}` CHARACTER SET utf8mb4")
    try:
        subprocess.run(
            ["mariadb", f"--host={os.environ['MYSQL_HOST']}",
             f"--port={os.environ['MYSQL_TCP_PORT']}", f"--user={os.environ['MYSQL_USER']}",
             scratch],
            input=gzip.decompress(dump), check=True, capture_output=True, env={**os.environ})
        return _post_content(scratch, post_id)
    finally:
        with data.master() as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE `{scratch}`")


def test_post_and_upload_come_back_byte_equal_from_the_archive(
    platform: dict[str, str], data_plane: str, site: envs.Obj, namespace: str
) -> None:
    title = f"Archived post {uuid.uuid4().hex[:8]}"
    post_id = _write_post(platform, site, title)
    body = _png(uuid.uuid4().bytes)
    stored = _upload(platform, site, f"archived-{uuid.uuid4().hex[:8]}.png", body)
    database = site["status"]["resources"]["databaseName"]
    written = _post_content(database, post_id)
    assert written == POST_CONTENT.encode(), "WordPress stored the content as sent"

    kube.kubectl("delete", "wpenv", "site", "-n", namespace, "--wait=false", env=platform)
    data.gone(platform, namespace, "site", timeout=300)
    [archive] = data.archives(namespace, "site")
    manifest = json.loads(data.read_object(archive.uri.rstrip("/") + "/manifest.json"))
    bucket = manifest["bucket"]

    dump = data.read_object(f"s3://{bucket}/{manifest['database']['key']}")
    assert hashlib.sha256(dump).hexdigest() == manifest["database"]["sha256"]
    assert title.encode() in gzip.decompress(dump), "the dump holds the post"
    assert _restored_post(dump, post_id) == written

    tar_bytes = data.read_object(f"s3://{bucket}/{manifest['files']['key']}")
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:gz") as tar:
        members = {m.name.removeprefix("./"): m for m in tar.getmembers() if m.isfile()}
        extracted = tar.extractfile(members[f"uploads/{stored}"])
        assert extracted is not None
        assert extracted.read() == body
