"""The data plane: each task the simulator runs is a real WordPress on loopback.

ECS would pull the tenant's image, inject its `environment` and `secrets` and start it with
the tenant's EFS access point mounted on `/var/www/html/wp-content`; the ALB would then
probe it with the target group's health check. Here, while the data plane is on:

- the WordPress is Debian's (`wordpress`, `php-cli`, `php-mysql`), copied once into
  ``<state>/image`` as the image's `/var/www/html` (without `wp-config.php` and
  `wp-content`), and hard-linked into one tree per task;
- each task gets the environment ECS gives a container: its `environment`, then its
  `secrets` read from moto's Secrets Manager (whole secret, or `:json-key:stage:version`
  of one), plus what ECS adds (AWS_REGION, AWS_DEFAULT_REGION, AWS_EXECUTION_ENV); nothing
  of the platform's own environment leaks in;
- the task's `wp-config.php` follows the official image's conventions (WORDPRESS_DB_*,
  WORDPRESS_TABLE_PREFIX, WORDPRESS_DEBUG, WORDPRESS_CONFIG_EXTRA, the WORDPRESS_<salt>
  keys, `_FILE` variants); a salt the environment lacks gets a random value per task, as
  the image's entrypoint writes one into each container's `wp-config.php`;
- `wp-content` is the tenant's directory: the platform's EFS directory joined with the
  access point's root path (and the volume's root directory below it); the image's default
  plugins and themes are copied in where missing, as the image's entrypoint does;
- PHP trusts the platform's database CA (`openssl.cafile`), the local stand-in for the RDS
  CA bundle the image must carry (README: what the image must provide);
- `php -S 127.0.0.1:<free port>` serves the tree through a small router (pretty
  permalinks go to `index.php`), so ``/wpenv/tasks`` can say where each task answers;
- a worker thread probes every task with its target group's health check (path, matcher,
  interval, timeout, healthy and unhealthy thresholds; a new target is healthy after one
  passed check, as the ALB's documentation says): the simulator completes a rollout
  only once all of its tasks are healthy, and fails it (the circuit breaker, which then
  rolls back) as soon as one is unhealthy. ECS would first replace the failing task a few
  times; the verdict is the same, sooner.

The simulator calls :meth:`DataPlane.rollout` when a deployment's delay is over and
:meth:`DataPlane.sync` on every pass; everything slow (copying, starting, probing,
stopping) happens in the worker thread, outside the simulator's lock. Off, both calls do
nothing and the simulator behaves as it always did.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from moto.backends import get_backend

from tests.platform import procs
from tests.platform.simulator import add_event, task_ips

__all__ = [
    "ENABLED_ENV",
    "PACKAGES",
    "PENDING",
    "DataPlane",
    "HealthCheck",
    "container_environment",
    "ensure_installed",
    "installed",
    "read_tasks",
    "set_enabled",
]

log = logging.getLogger("wpenv.dataplane")

ENABLED_ENV = "WPENV_DATA_PLANE"  # on|off; the platform's default is on, the tests' off
STATE_ENV = "WPENV_DATA_PLANE_DIR"  # where the image copy, task trees and logs live
EFS_ENV = "WPENV_EFS_MOUNT_PATH"  # the platform's local "EFS"
CA_ENV = "WPENV_DB_CA_BUNDLE"  # the database CA the image trusts
PACKAGES = ("wordpress", "wordpress-theme-twentytwentythree", "php-cli", "php-mysql")
SOURCE = Path("/usr/share/wordpress")
APT_LOCK = Path("/tmp/wpenv-apt.lock")
PATH = "/usr/local/bin:/usr/bin:/bin"
CONTAINER_CONTENT = "/var/www/html/wp-content"  # where the official image has wp-content
SALTS = (
    "AUTH_KEY", "SECURE_AUTH_KEY", "LOGGED_IN_KEY", "NONCE_KEY",
    "AUTH_SALT", "SECURE_AUTH_SALT", "LOGGED_IN_SALT", "NONCE_SALT",
)
START_TIMEOUT = 20.0  # seconds for `php -S` to listen before the task counts as stopped
WORKER_PERIOD = 0.25
# A retired task gets no new request (the load balancer forwards only to tasks not being
# stopped) but finishes those under way, as a target draining for the target group's
# deregistration delay does (AWS: 300 s by default; here a short stand-in).
DRAIN_SECONDS = 2.0
PENDING = "pending"  # rollout(): not decided yet (tasks starting or not yet healthy)

STOPPED_ESSENTIAL = "Essential container in task exited"
ELB_FAILED = "Task failed ELB health checks in (target-group {arn})"
UNHEALTHY_EVENT = (
    "(port {port}) is unhealthy in (target-group {arn}) due to (reason Health checks "
    "failed with these codes: [{codes}])."
)
JSON_KEY_MISSING = (
    "ResourceInitializationError: unable to pull secrets or registry auth: execution "
    "resource retrieval failed: unable to retrieve secret from asm: retrieved secret from "
    "Secrets Manager did not contain json key {key}"
)

Backend = Any  # a moto region backend
Service = Any  # moto.ecs.models.Service


# --- packages ------------------------------------------------------------------------------


def installed() -> bool:
    """Whether PHP with mysqli and Debian's WordPress (and its default theme) are here."""
    return (
        shutil.which("php", path=PATH) is not None
        and (SOURCE / "wp-settings.php").is_file()
        and (SOURCE / "wp-content" / "themes" / "twentytwentythree").is_dir()
        and any(Path("/etc/php").glob("*/mods-available/mysqli.ini"))
    )


def ensure_installed() -> None:
    """Install the packages when missing, once per machine at a time (as root).

    Other platforms on this machine may install at the same moment: a lock file makes
    them take turns, and apt waits for dpkg's own lock rather than failing on it.
    """
    if installed():
        return
    APT_LOCK.touch(exist_ok=True)
    with APT_LOCK.open() as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if installed():
            return
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        apt = ["apt-get", "-o", "DPkg::Lock::Timeout=300"]
        subprocess.run([*apt, "update"], check=True, env=env)
        subprocess.run(
            [*apt, "install", "-y", "--no-install-recommends", *PACKAGES], check=True, env=env
        )
    # The wordpress package pulls in Apache; policy-rc.d (or its absence of a service
    # manager) keeps it from starting, and it is left alone either way.


# --- what a task is ------------------------------------------------------------------------


@dataclass(frozen=True)
class HealthCheck:
    """A target group's health check, as the ALB runs it."""

    target_group_arn: str
    path: str = "/"
    codes: str = "200"
    interval: float = 30.0
    timeout: float = 10.0
    healthy_threshold: int = 5
    unhealthy_threshold: int = 2

    @classmethod
    def of(cls, target_group: Any) -> HealthCheck:
        """Read moto's FakeTargetGroup (its defaults are AWS's)."""
        return cls(
            target_group_arn=str(target_group.arn),
            path=str(target_group.health_check_path or "/"),
            codes=str((target_group.matcher or {}).get("HttpCode") or "200"),
            interval=float(target_group.health_check_interval_seconds),
            timeout=float(target_group.health_check_timeout_seconds),
            healthy_threshold=int(target_group.healthy_threshold_count),
            unhealthy_threshold=int(target_group.unhealthy_threshold_count),
        )

    def matches(self, status: int) -> bool:
        """Whether an HTTP status passes the matcher (`200`, `200,302`, `200-399`)."""
        for part in self.codes.split(","):
            low, _, high = part.strip().partition("-")
            if low and int(low) <= status <= int(high or low):
                return True
        return False


@dataclass(frozen=True)
class TaskSpec:
    """Everything needed to run one task, resolved from moto while the simulator holds it."""

    task_id: str
    service: str  # "cluster/service"
    deployment_id: str
    index: int
    task_definition: str
    ip: str  # the fake address the target group holds
    container_port: int
    environment: Mapping[str, str]
    content_dir: Path | None  # the tenant's directory, None without an EFS volume
    identity: tuple[int, int] | None  # (uid, gid) its access point enforces, if any
    health: tuple[HealthCheck, ...]


@dataclass
class Task:
    """One running (or starting, or stopping) WordPress."""

    spec: TaskSpec
    port: int = 0
    pid: int | None = None
    state: str = "PROVISIONING"  # PROVISIONING, RUNNING, STOPPED
    health: str = "initial"  # initial, healthy, unhealthy (ALB's TargetHealth states)
    passes: int = 0
    failures: int = 0
    codes: list[str] = field(default_factory=list)
    next_check: float = 0.0
    started_at: float = 0.0
    installed_after: float | None = None  # seconds the install step took
    listening_after: float | None = None  # seconds from start to `php -S` listening
    healthy_after: float | None = None  # seconds from start to healthy
    stop_requested: bool = False
    stop_at: float = 0.0  # a retired task drains (answers what it holds) until then
    stopped_reason: str = ""
    site: Path | None = None  # WordPress's directory in the task's tree, once started

    def view(self) -> dict[str, Any]:
        """What ``GET /wpenv/tasks`` shows of the task."""
        spec = self.spec
        return {
            "taskId": spec.task_id, "service": spec.service, "deployment": spec.deployment_id,
            "taskDefinition": spec.task_definition, "ip": spec.ip,
            "containerPort": spec.container_port,
            "address": f"127.0.0.1:{self.port}" if self.port else None,
            "targetGroups": [h.target_group_arn for h in spec.health],
            "lastStatus": self.state, "health": self.health,
            "installedAfterSeconds": self.installed_after,
            "listeningAfterSeconds": self.listening_after,
            "healthyAfterSeconds": self.healthy_after, "stoppedReason": self.stopped_reason,
            "memoryKiB": _rss_kib(self.pid) if self.state == "RUNNING" else None,
            # Where a test finds what the container runs with: the server's process (its
            # environment, its PHP options) and WordPress in the task's tree.
            "pid": self.pid if self.state == "RUNNING" else None,
            "siteDir": str(self.site) if self.site and self.state == "RUNNING" else None,
        }


def _rss_kib(pid: int | None) -> int | None:
    """Resident memory of the task's PHP (Linux /proc), what one task costs the machine."""
    try:
        status = Path(f"/proc/{pid}/status").read_text() if pid else ""
    except OSError:
        return None
    line = next((x for x in status.splitlines() if x.startswith("VmRSS:")), "")
    return int(line.split()[1]) if line else None


# --- what ECS gives the container ------------------------------------------------------------


def _secret_value(value_from: str, account: str, region: str) -> str:
    """The value ECS injects for one `valueFrom` of Secrets Manager (task_start checked it).

    `arn:...:secret:<name>[:json-key[:version-stage[:version-id]]]`, or a bare name.
    """
    parts = value_from.split(":") if value_from.startswith("arn:") else []
    secret_id = ":".join(parts[:7]) if parts else value_from
    key, stage, version = [*parts[7:10], "", "", ""][:3] if parts else ("", "", "")
    if parts:
        account, region = parts[4], parts[3]
    backend = get_backend("secretsmanager")[account][region]
    stage = stage or ("" if version else "AWSCURRENT")  # neither given: the current one
    answer = backend.get_secret_value(secret_id, version, stage)
    text = str(answer.get("SecretString") or "")
    if not key:
        return text
    document = json.loads(text)
    if not isinstance(document, dict) or key not in document:
        raise LookupError(JSON_KEY_MISSING.format(key=key))
    return str(document[key])


def container_environment(
    container: Mapping[str, Any], account: str, region: str
) -> dict[str, str]:
    """The environment ECS starts the container with: `environment`, `secrets`, its own.

    Raises LookupError (with ECS's stopped reason) when a JSON key is not in its secret.
    """
    env = {"AWS_REGION": region, "AWS_DEFAULT_REGION": region,
           "AWS_EXECUTION_ENV": "AWS_ECS_FARGATE"}
    for entry in container.get("environment") or []:
        env[str(entry["name"])] = str(entry.get("value", ""))
    for secret in container.get("secrets") or []:
        env[str(secret["name"])] = _secret_value(str(secret["valueFrom"]), account, region)
    return env


def _efs_volume(
    definition: Any, container: Mapping[str, Any], account: str, region: str
) -> tuple[Mapping[str, Any], Any] | None:
    """(efsVolumeConfiguration, moto's access point or None) of the wp-content mount; None
    without one, or when its access point is gone."""
    mount = next(
        (m for m in container.get("mountPoints") or []
         if m.get("containerPath") == CONTAINER_CONTENT), None,
    )
    if mount is None:
        return None
    volume = next((v for v in definition.volumes or []
                   if v.get("name") == mount.get("sourceVolume")), None)
    config = (volume or {}).get("efsVolumeConfiguration") or {}
    if not config:
        return None
    access_point_id = (config.get("authorizationConfig") or {}).get("accessPointId")
    if not access_point_id:
        return config, None
    access_point = get_backend("efs")[account][region].access_points.get(access_point_id)
    return None if access_point is None else (config, access_point)


def content_directory(
    definition: Any, container: Mapping[str, Any], account: str, region: str, efs_root: Path
) -> Path | None:
    """Where the container's wp-content mount lands on the platform's EFS directory."""
    found = _efs_volume(definition, container, account, region)
    if found is None:
        return None
    config, access_point = found
    root = "/"
    if access_point is not None:
        root = str((access_point.root_directory or {}).get("Path") or "/")
    below = str(config.get("rootDirectory") or "/")
    return efs_root / root.strip("/") / below.strip("/")


def enforced_identity(
    definition: Any, container: Mapping[str, Any], account: str, region: str
) -> tuple[int, int] | None:
    """(uid, gid) the wp-content mount's access point enforces, None without one.

    EFS replaces the client's user and group with the access point's POSIX user for every
    operation through it, and new files and directories get that owner ("Enforcing a user
    identity using an access point", EFS User Guide).
    """
    found = _efs_volume(definition, container, account, region)
    posix = (found[1].posix_user or {}) if found and found[1] is not None else {}
    if "Uid" not in posix or "Gid" not in posix:
        return None
    return int(posix["Uid"]), int(posix["Gid"])


# --- the per-task tree -------------------------------------------------------------------------

ROUTER = """<?php
// The ALB sends every path to the task unchanged; WordPress lives under the tenant's
// prefix (WPENV_PATH_PREFIX, "" for the root), as the image must serve it. Apache's
// rewrite rules in the official image send what is not a file to index.php; php -S does
// the same with this router, and answers 404 outside the prefix.
// Which task answered, for tests (the platform's own variable, not the container's).
header('X-Wpenv-Task: ' . getenv('WPENV_DATA_PLANE_TASK'));
$prefix = rtrim((string) getenv('WPENV_PATH_PREFIX'), '/');
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
if ($path !== $prefix && strpos($path, $prefix . '/') !== 0) {
    http_response_code(404);
    return true;
}
$file = $_SERVER['DOCUMENT_ROOT'] . $path;
if ($path !== $prefix . '/' && (is_file($file) || is_file(rtrim($file, '/') . '/index.php'))) {
    return false;
}
$_SERVER['SCRIPT_NAME'] = $prefix . '/index.php';
$_SERVER['SCRIPT_FILENAME'] = $_SERVER['DOCUMENT_ROOT'] . $prefix . '/index.php';
$_SERVER['PHP_SELF'] = $prefix . '/index.php';
require $_SERVER['SCRIPT_FILENAME'];
"""

# The first install, as the image must do it on start (README: what the image must
# provide): once, under a database lock that two tasks starting together share, with the
# admin of the tenant's site secret and WordPress's home and siteurl from WP_HOME.
INSTALL = """<?php
define('WP_INSTALLING', true);
$url = parse_url((string) getenv('WPENV_SITE_URL'));
$_SERVER['HTTP_HOST'] = $url['host'] ?? 'localhost';
$_SERVER['REQUEST_URI'] = ($url['path'] ?? '/');
$_SERVER['HTTPS'] = 'on';
function wp_new_blog_notification($blog_title, $blog_url, $user_id, $password) {}
require __DIR__ . '/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
$wpdb->query("SELECT GET_LOCK('wpenv-install', 60)");
if (!is_blog_installed()) {
    $result = wp_install(getenv('WORDPRESS_SITE_TITLE') ?: 'WordPress',
        getenv('WORDPRESS_ADMIN_USER'), getenv('WORDPRESS_ADMIN_EMAIL'), false, '',
        getenv('WORDPRESS_ADMIN_PASSWORD'));
    echo "installed: user {$result['user_id']}\n";
} else {
    echo "already installed\n";
}
$wpdb->query("SELECT RELEASE_LOCK('wpenv-install')");
"""
INSTALL_TIMEOUT = 120.0
PREFIX_ENV = "WPENV_PATH_PREFIX"  # where WordPress lives in the document root
ADMIN_ENV = ("WORDPRESS_ADMIN_USER", "WORDPRESS_ADMIN_PASSWORD", "WORDPRESS_ADMIN_EMAIL")

WP_CONFIG = """<?php
// The task's wp-config.php, after the official image's conventions: every setting comes
// from the container's environment (or a file named by <VARIABLE>_FILE).
function getenv_docker($name, $default) {{
    $file = getenv($name . '_FILE');
    if ($file !== false && $file !== '') {{
        return rtrim(file_get_contents($file), "\\r\\n");
    }}
    $value = getenv($name);
    return $value === false ? $default : $value;
}}
define('DB_NAME', getenv_docker('WORDPRESS_DB_NAME', 'wordpress'));
define('DB_USER', getenv_docker('WORDPRESS_DB_USER', 'example username'));
define('DB_PASSWORD', getenv_docker('WORDPRESS_DB_PASSWORD', 'example password'));
define('DB_HOST', getenv_docker('WORDPRESS_DB_HOST', 'mysql'));
define('DB_CHARSET', getenv_docker('WORDPRESS_DB_CHARSET', 'utf8'));
define('DB_COLLATE', getenv_docker('WORDPRESS_DB_COLLATE', ''));
// Without WORDPRESS_<KEY> each task has its own random value, as each container does.
foreach ({salts} as $key => $fallback) {{
    define($key, getenv_docker('WORDPRESS_' . $key, $fallback));
}}
$table_prefix = getenv_docker('WORDPRESS_TABLE_PREFIX', 'wp_');
define('WP_DEBUG', (bool) getenv_docker('WORDPRESS_DEBUG', ''));
if (isset($_SERVER['HTTP_X_FORWARDED_PROTO'])
        && strpos($_SERVER['HTTP_X_FORWARDED_PROTO'], 'https') !== false) {{
    $_SERVER['HTTPS'] = 'on';
}}
if ($configExtra = getenv_docker('WORDPRESS_CONFIG_EXTRA', '')) {{
    eval($configExtra);
}}
if (!defined('ABSPATH')) {{
    define('ABSPATH', __DIR__ . '/');
}}
require_once ABSPATH . 'wp-settings.php';
"""


def _php_array(values: Mapping[str, str]) -> str:
    """A PHP array literal of string keys and values (JSON strings are valid PHP ones
    when they hold no `$` or backslash, which token_hex never does)."""
    return "[" + ", ".join(f"{json.dumps(k)} => {json.dumps(v)}" for k, v in values.items()) + "]"


def wp_config() -> str:
    """The text of one task's wp-config.php, with fresh per-task fallback salts."""
    salts = {key: secrets.token_hex(32) for key in SALTS}
    return WP_CONFIG.format(salts=_php_array(salts))


def prepare_image(state: Path) -> Path:
    """Copy Debian's WordPress once into ``state/image`` (links resolved, no config, no
    wp-content), where every task's tree is hard-linked from."""
    image = state / "image"
    if (image / "wp-settings.php").is_file():
        return image
    partial = state / "image.partial"
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(SOURCE, partial, symlinks=False,
                    ignore=shutil.ignore_patterns("wp-config.php", "wp-content", ".htaccess"))
    partial.replace(image)
    return image


def populate_content(content: Path, owner: tuple[int, int] | None = None) -> None:
    """Copy the image's plugins and themes into an empty (or partial) wp-content.

    What the copy creates belongs to `owner`, the identity the access point enforces, as
    it would when the container's entrypoint copies through the mount.
    """
    for kind in ("plugins", "themes"):
        source = SOURCE / "wp-content" / kind
        target = content / kind
        if not target.is_dir():
            target.mkdir(parents=True)
            _chown(target, owner)
        for item in sorted(source.iterdir()) if source.is_dir() else []:
            destination = target / item.name
            if destination.exists():
                continue
            if item.is_dir():
                shutil.copytree(item, destination)
            else:
                shutil.copy2(item, destination)
            for path in [destination, *(destination.rglob("*") if item.is_dir() else [])]:
                _chown(path, owner)


def _chown(path: Path, owner: tuple[int, int] | None) -> None:
    """Give `path` to `owner` (only root may; otherwise everything is the platform's)."""
    if owner is not None and os.geteuid() == 0:
        os.chown(path, *owner, follow_symlinks=False)


def as_identity(spec: TaskSpec) -> dict[str, Any]:
    """Popen arguments that run the task's PHP as its access point's POSIX user, so the
    tenant's files are written and read as EFS would (only when the platform is root)."""
    if spec.identity is None or os.geteuid() != 0:
        return {}
    uid, gid = spec.identity
    return {"user": uid, "group": gid, "extra_groups": []}


def task_tree(state: Path, spec: TaskSpec) -> Path:
    """``state/tasks/<id>/html``, the document root; WordPress (the image hard-linked,
    wp-config.php, wp-content linked) in it under the task's path prefix."""
    image = prepare_image(state)
    home = state / "tasks" / spec.task_id
    html = home / "html"
    if html.exists():
        return html
    home.mkdir(parents=True, exist_ok=True)
    site = wordpress_root(html, spec.environment)
    site.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-al", str(image), str(site)], check=True)
    (site / "wp-config.php").write_text(wp_config())
    (site / "wpenv-install.php").write_text(INSTALL)
    if spec.content_dir is not None:
        if not spec.content_dir.is_dir():  # EFS makes an access point's root on first use
            spec.content_dir.mkdir(parents=True)
            _chown(spec.content_dir, spec.identity)
        populate_content(spec.content_dir, spec.identity)
        (site / "wp-content").symlink_to(spec.content_dir, target_is_directory=True)
    return html


def wordpress_root(html: Path, environment: Mapping[str, str]) -> Path:
    """Where WordPress lives below the document root: at the path prefix, if any."""
    prefix = environment.get(PREFIX_ENV, "").strip("/")
    if ".." in prefix.split("/"):
        raise ValueError(f"{PREFIX_ENV} may not leave the document root")
    return html / prefix if prefix else html


def _free_port() -> int:
    """A port nothing listens on now (the kernel's choice)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the data plane ----------------------------------------------------------------------------


class DataPlane:
    """Real WordPress tasks behind the simulator's services; see the module docstring."""

    def __init__(self, state: Path, efs_root: Path, ca_bundle: str | None, enabled: bool) -> None:
        self.state = state
        self.efs_root = efs_root
        self.ca_bundle = ca_bundle
        self.enabled = enabled
        self.lock = threading.RLock()
        self.tasks: dict[str, Task] = {}  # "cluster/service/deployment/index" -> task
        self.retiring: list[Task] = []  # no longer wanted: the worker stops them
        (state / "router.php").parent.mkdir(parents=True, exist_ok=True)
        (state / "router.php").write_text(ROUTER)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> DataPlane:
        """The motoserver's data plane, from the variables aws.py passes it."""
        local = Path(environ.get(STATE_ENV) or "/tmp/wpenv-data-plane")
        efs = Path(environ.get(EFS_ENV) or local / "efs")
        on = environ.get(ENABLED_ENV, "on").strip().lower() not in ("off", "0", "false", "no")
        return cls(local, efs, environ.get(CA_ENV) or None, on and installed())

    # -- switched by tests ------------------------------------------------------------------

    def set_enabled(self, on: bool) -> None:
        """Switch on (the packages must be installed) or off (every task stops)."""
        if on and not installed():
            raise RuntimeError(f"install {' '.join(PACKAGES)} first (ensure_installed)")
        with self.lock:
            self.enabled = on
            if not on:
                self._retire(list(self.tasks))

    def _retire(self, keys: Iterable[str]) -> None:
        """Hand these tasks to the worker to stop; a later rollout starts new ones."""
        for key in keys:
            task = self.tasks.pop(key)
            task.stop_requested = True
            task.stop_at = time.monotonic() + DRAIN_SECONDS
            self.retiring.append(task)

    def views(self) -> list[dict[str, Any]]:
        """Every task that is not yet stopped, for ``GET /wpenv/tasks``."""
        with self.lock:
            return [t.view() for t in [*self.tasks.values(), *self.retiring]
                    if t.state != "STOPPED"]

    def healthy(self, target_group_arn: str) -> dict[tuple[str, int], list[str]]:
        """(ip, container port) -> loopback addresses of the tasks behind that target that
        are running and healthy in ``target_group_arn``: what a load balancer forwards to."""
        found: dict[tuple[str, int], list[str]] = {}
        with self.lock:
            tasks = [*self.tasks.values(), *self.retiring]
        for task in tasks:
            spec = task.spec
            if (task.state == "RUNNING" and task.health == "healthy" and not task.stop_requested
                    and any(h.target_group_arn == target_group_arn for h in spec.health)):
                found.setdefault((spec.ip, spec.container_port), []).append(
                    f"127.0.0.1:{task.port}")
        return found

    def wsgi(self, app: WSGIApplication) -> WSGIApplication:
        """Answer ``/wpenv/data-plane`` (GET, PUT) and ``GET /wpenv/tasks``; the rest: ``app``."""

        def answer(start_response: StartResponse, status: str, document: Any) -> list[bytes]:
            body = json.dumps(document).encode()
            start_response(status, [("Content-Type", "application/json"),
                                    ("Content-Length", str(len(body)))])
            return [body]

        def handler(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            path, method = environ.get("PATH_INFO"), environ.get("REQUEST_METHOD")
            if path == TASKS_PATH and method == "GET":
                return answer(start_response, "200 OK", {"tasks": self.views()})
            if path != DATA_PLANE_PATH:
                return app(environ, start_response)
            if method == "PUT":
                length = int(environ.get("CONTENT_LENGTH") or 0)
                try:
                    wanted = json.loads(environ["wsgi.input"].read(length) or b"{}")
                    self.set_enabled(bool(wanted["enabled"]))
                except (ValueError, KeyError, RuntimeError) as exc:
                    return answer(start_response, "409 Conflict", {"error": str(exc)})
            return answer(start_response, "200 OK", {"enabled": self.enabled})

        return handler

    # -- called by the simulator (under its lock: quick, no I/O but moto's memory) -----------

    def rollout(self, ecs: Backend, service: Service, deployment: Mapping[str, Any]) -> str | None:
        """PENDING while the deployment's tasks start; None once all are healthy; else why
        one stopped (the circuit breaker's cause). Off: None, as without a data plane."""
        if not self.enabled:
            return None
        count = int(service.desired_count)
        prefix = f"{service.cluster_name}/{service.name}/{deployment['id']}"
        with self.lock:
            tasks = []
            for index in range(count):
                task = self.tasks.get(f"{prefix}/{index}")
                if task is None:
                    try:
                        spec = self._spec(ecs, service, deployment, index, count)
                    except LookupError as exc:
                        return str(exc.args[0])
                    task = self.tasks[f"{prefix}/{index}"] = Task(spec)
                tasks.append(task)
            return self._verdict(service, tasks)

    def sync(self, service: Service) -> None:
        """Stop the tasks of deployments that are gone or FAILED, beyond the desired count,
        or of a service that is no longer ACTIVE."""
        with self.lock:
            live = {
                d["id"]: int(d.get("desiredCount") or 0)
                for d in (service.deployments or [])
                if service.status == "ACTIVE" and d.get("rolloutState") != "FAILED"
            }
            prefix = f"{service.cluster_name}/{service.name}/"
            gone = []
            for key in self.tasks:
                if key.startswith(prefix):
                    deployment, _, index = key[len(prefix):].rpartition("/")
                    if deployment not in live or int(index) >= live[deployment]:
                        gone.append(key)
            self._retire(gone)

    def forget_except(self, services: Iterable[str]) -> None:
        """Stop the tasks of services moto no longer holds (``cluster/service`` names)."""
        keep = set(services)
        with self.lock:
            self._retire([k for k, t in self.tasks.items() if t.spec.service not in keep])

    def _spec(self, ecs: Backend, service: Service, deployment: Mapping[str, Any],
              index: int, count: int) -> TaskSpec:
        definition = ecs.describe_task_definition(deployment["taskDefinition"])
        container = (definition.container_definitions or [{}])[0]
        account, region = str(ecs.account_id), str(ecs.region_name)
        ec2 = _region_backend("ec2", account, region)
        elbv2 = _region_backend("elbv2", account, region)
        checks = []
        for lb in service.load_balancers or []:
            group = elbv2.target_groups.get(lb.get("targetGroupArn")) if elbv2 else None
            if group is not None and group.health_check_enabled:
                checks.append(HealthCheck.of(group))
        ports = container.get("portMappings") or [{}]
        return TaskSpec(
            task_id=uuid.uuid4().hex,
            service=f"{service.cluster_name}/{service.name}",
            deployment_id=str(deployment["id"]),
            index=index,
            task_definition=str(definition.arn),
            ip=task_ips(service, count, ec2)[index],
            container_port=int(ports[0].get("containerPort") or 80),
            environment=container_environment(container, account, region),
            content_dir=content_directory(definition, container, account, region,
                                          self.efs_root),
            identity=enforced_identity(definition, container, account, region),
            health=tuple(checks),
        )

    def _verdict(self, service: Service, tasks: list[Task]) -> str | None:
        for task in tasks:
            if task.state == "STOPPED" or task.health == "unhealthy":
                if task.health == "unhealthy" and task.spec.health:
                    arn = task.spec.health[0].target_group_arn
                    add_event(service, UNHEALTHY_EVENT.format(
                        port=task.spec.container_port, arn=arn, codes=", ".join(task.codes)))
                    return ELB_FAILED.format(arn=arn)
                return task.stopped_reason or STOPPED_ESSENTIAL
        if all(t.state == "RUNNING" and t.health == "healthy" for t in tasks):
            return None
        return PENDING

    # -- the worker: start, probe, stop -------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Keep every task's process in line with its record until ``stop`` is set."""
        while not stop.wait(WORKER_PERIOD):
            with self.lock:
                tasks = [*self.tasks.values(), *self.retiring]
            for task in tasks:
                try:
                    self._work(task)
                except Exception:  # one odd task must not stop the others
                    log.exception("task %s", task.spec.task_id)
            with self.lock:
                self.retiring = [t for t in self.retiring if t.state != "STOPPED"]
        self.stop_all()

    def _work(self, task: Task) -> None:
        if task.state == "STOPPED":
            return
        if task.stop_requested:
            if time.monotonic() < task.stop_at:
                return  # draining: no new requests come, those under way finish
            self._stop(task, task.stopped_reason or "Scaling activity initiated by deployment")
        elif task.pid is None:
            self._start(task)
        elif not procs.is_alive(task.pid):
            self._stop(task, STOPPED_ESSENTIAL)
        elif time.monotonic() >= task.next_check:
            self._probe(task)

    def _start(self, task: Task) -> None:
        spec = task.spec
        started = time.monotonic()
        html = task_tree(self.state, spec)
        home = html.parent
        task.port = _free_port()
        argv = ["php"]
        if self.ca_bundle:
            argv += ["-d", f"openssl.cafile={self.ca_bundle}"]
        env = {"PATH": PATH, "HOME": str(home), **spec.environment,
               "WPENV_DATA_PLANE_TASK": spec.task_id}
        task.site = wordpress_root(html, spec.environment)
        self._install(task, argv, env, task.site, home / "install.log")
        argv += ["-S", f"127.0.0.1:{task.port}", "-t", str(html), str(self.state / "router.php")]
        task.pid = procs.start_detached(argv, pid_file=home / "php.pid",
                                        log_file=home / "php.log", env=env, cwd=html,
                                        **as_identity(spec))
        task.started_at = started
        try:
            procs.wait_for_port("127.0.0.1", task.port, what=f"task {spec.task_id}",
                                timeout=START_TIMEOUT, pid=task.pid)
        except procs.StartupError:
            self._stop(task, STOPPED_ESSENTIAL)
            return
        task.state = "RUNNING"
        task.listening_after = round(time.monotonic() - started, 2)
        task.next_check = time.monotonic()
        log.info("task %s of %s on 127.0.0.1:%d", spec.task_id, spec.service, task.port)

    @staticmethod
    def _install(task: Task, php: list[str], env: Mapping[str, str], site: Path,
                 log_file: Path) -> None:
        """Install WordPress when its database is empty, before the server starts.

        Only with the admin's login in the environment (the operator's task definition).
        A failure is logged and the server starts anyway: it answers 500 then, its health
        check fails and the circuit breaker acts, as with a broken database login.
        """
        if not all(env.get(name) for name in ADMIN_ENV):
            return
        started = time.monotonic()
        try:
            done = subprocess.run([*php, str(site / "wpenv-install.php")], env=dict(env),
                                  cwd=site, capture_output=True, text=True,
                                  timeout=INSTALL_TIMEOUT, check=False,
                                  **as_identity(task.spec))
        except subprocess.TimeoutExpired:
            log.warning("task %s: the install timed out", task.spec.task_id)
            return
        log_file.write_text(done.stdout + done.stderr)
        task.installed_after = round(time.monotonic() - started, 2)
        if done.returncode != 0 or "installed" not in done.stdout:
            log.warning("task %s: the install failed (exit %d)", task.spec.task_id,
                        done.returncode)

    def _probe(self, task: Task) -> None:
        """One round of the target group's health check (no target group: healthy once up)."""
        checks = task.spec.health
        if not checks:
            task.health = "healthy"
            task.next_check = float("inf")
            self._mark_healthy(task)
            return
        check = checks[0]
        status = _http_status(f"http://127.0.0.1:{task.port}{check.path}", check.timeout,
                              host=f"{task.spec.ip}:{task.spec.container_port}")
        task.next_check = time.monotonic() + check.interval
        if status is not None and check.matches(status):
            task.passes, task.failures = task.passes + 1, 0
            # A newly registered target is healthy after one passed check; an unhealthy
            # one needs the healthy threshold ("Health checks for ... target groups").
            needed = 1 if task.health == "initial" else check.healthy_threshold
            if task.passes >= needed:
                task.health = "healthy"
                self._mark_healthy(task)
        else:
            task.passes, task.failures = 0, task.failures + 1
            task.codes = [str(status) if status is not None else "timeout"]
            if task.failures >= check.unhealthy_threshold:
                task.health = "unhealthy"

    @staticmethod
    def _mark_healthy(task: Task) -> None:
        if task.healthy_after is None:
            task.healthy_after = round(time.monotonic() - task.started_at, 2)
            log.info("task %s healthy after %.1fs", task.spec.task_id, task.healthy_after)

    def _stop(self, task: Task, reason: str) -> None:
        home = self.state / "tasks" / task.spec.task_id
        procs.stop(home / "php.pid", name="php")
        task.state, task.stop_requested = "STOPPED", True
        task.stopped_reason = task.stopped_reason or reason
        shutil.rmtree(home / "html", ignore_errors=True)  # the tenant's files are not in it

    def stop_all(self) -> None:
        """Stop every task's process (the server is going away)."""
        with self.lock:
            tasks = [*self.tasks.values(), *self.retiring]
        for task in tasks:
            if task.state != "STOPPED":
                self._stop(task, "Service is shutting down")


def stop_leftovers(state: Path) -> None:
    """Stop any task process a dead server left behind (``aws.down``)."""
    for pid_file in (state / "tasks").glob("*/php.pid"):
        procs.stop(pid_file, name="php")


def _http_status(url: str, timeout: float, host: str) -> int | None:
    """The status of GET ``url`` without following redirects; None when nothing answers."""
    headers = {"Host": host, "User-Agent": "ELB-HealthChecker/2.0"}
    request = urllib.request.Request(url, headers=headers)
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError):
        return None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """The ALB judges the redirect itself, it does not follow it."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _region_backend(service: str, account: str, region: str) -> Backend | None:
    with contextlib.suppress(Exception):
        return get_backend(service)[account][region]  # type: ignore[call-overload]
    return None


# --- clients (tests, demo) -----------------------------------------------------------------------

DATA_PLANE_PATH = "/wpenv/data-plane"
TASKS_PATH = "/wpenv/tasks"


def set_enabled(endpoint: str, on: bool, timeout: float = 30.0) -> None:
    """Switch the platform's data plane on or off (PUT /wpenv/data-plane)."""
    body = json.dumps({"enabled": on}).encode()
    request = urllib.request.Request(endpoint + DATA_PLANE_PATH, data=body, method="PUT",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        response.read()


def read_tasks(endpoint: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The running tasks with their loopback addresses and health (GET /wpenv/tasks)."""
    with urllib.request.urlopen(endpoint + TASKS_PATH, timeout=timeout) as response:
        document = json.loads(response.read())
    tasks: list[dict[str, Any]] = document["tasks"]
    return tasks
