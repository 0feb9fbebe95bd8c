"""MariaDB for the local platform: a private mariadbd on 127.0.0.1 with an admin account.

The operator creates one database and user per WordPress environment, so it needs an account
with every privilege and GRANT OPTION; root stays reachable only through the unix socket.
The server is the distribution's mariadbd with its own data directory, socket and port under
``local/mariadb/`` and ``--no-defaults``, so it neither uses nor disturbs a system MariaDB.
See CONTRACT.md for the interface.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pymysql

from tests.platform import procs

DEFAULT_PORT = 23306
HOST = "127.0.0.1"
ADMIN_USER = "wpenv_admin"
# '%' is what TCP logins match (with --skip-name-resolve the client host is 127.0.0.1);
# 'localhost' covers socket logins, which anonymous ''@'localhost' would otherwise shadow.
ADMIN_HOSTS = ("%", "localhost")
SERVER = "mariadbd"
# Debian puts mariadbd in /usr/sbin, which a non-login shell's PATH may lack.
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"])
PACKAGES = ("mariadb-server", "mariadb-client")
START_TIMEOUT = 90.0
# Linux limits a unix socket path to 107 bytes; mariadbd fails obscurely beyond that.
MAX_SOCKET_PATH = 100


def _home(local: Path) -> Path:
    return local / "mariadb"


def _port() -> int:
    return int(os.environ.get("WPENV_MYSQL_PORT", str(DEFAULT_PORT)))


def _which(program: str) -> str | None:
    return shutil.which(program, path=SEARCH_PATH)


def _program(program: str) -> str:
    path = _which(program)
    if path is None:
        raise RuntimeError(f"{program} not found even after installing {' '.join(PACKAGES)}")
    return path


def _ensure_installed() -> None:
    """Install Debian's MariaDB server and client when missing (fresh machines, as root).

    The client package also brings `mariadb-dump`, which the archive library runs.
    """
    if all(_which(p) for p in (SERVER, "mariadb-install-db", "mariadb", "mariadb-dump")):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES], check=True, env=env
    )
    # The package starts a system service on the default port; ours does not need it, but it
    # is left alone: stopping services we did not start is not this module's business.


def _admin_password(home: Path) -> str:
    """The admin password, generated once and kept (mode 0600) so every up() returns it."""
    path = home / "admin-password"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    # token_urlsafe gives [A-Za-z0-9_-] only: safe inside an SQL string literal.
    password = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(password + "\n")
    return password


def _exports(port: int, password: str) -> dict[str, str]:
    return {
        "MYSQL_HOST": HOST,
        "MYSQL_TCP_PORT": str(port),
        "MYSQL_USER": ADMIN_USER,
        "MYSQL_PWD": password,
    }


def _admin_login_ok(port: int, password: str) -> bool:
    """True if the admin can log in over TCP: the health check for reusing a server."""
    try:
        connection = pymysql.connect(
            host=HOST, port=port, user=ADMIN_USER, password=password, connect_timeout=3
        )
    except pymysql.MySQLError:
        return False
    connection.close()
    return True


def _initialise(home: Path) -> None:
    """Create the system tables once; a half-done earlier attempt is wiped and redone."""
    data, done = home / "data", home / "initialised"
    if done.exists():
        return
    shutil.rmtree(data, ignore_errors=True)
    log = home / "install-db.log"
    with log.open("ab") as out:
        result = subprocess.run(
            [
                _program("mariadb-install-db"),
                "--no-defaults",
                f"--datadir={data}",
                "--user=root",
                "--auth-root-authentication-method=socket",
                "--skip-test-db",
                "--skip-name-resolve",
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if result.returncode != 0:
        raise procs.StartupError(
            f"mariadb-install-db failed ({result.returncode})\n{procs.log_tail(log)}"
        )
    done.touch()


def _start(home: Path, port: int) -> None:
    """Start mariadbd detached and wait until it accepts TCP connections."""
    socket = home / "mariadbd.sock"
    if len(str(socket)) > MAX_SOCKET_PATH:
        raise procs.StartupError(f"socket path too long for Linux: {socket}")
    procs.require_port_free(HOST, port, "mariadb")
    (home / "tmp").mkdir(exist_ok=True)
    log = home / "mariadbd.log"
    pid = procs.start_detached(
        [
            _program(SERVER),
            "--no-defaults",
            "--user=root",
            f"--datadir={home / 'data'}",
            f"--socket={socket}",
            f"--port={port}",
            f"--bind-address={HOST}",
            "--skip-name-resolve",
            f"--pid-file={home / 'server.pid'}",
            f"--tmpdir={home / 'tmp'}",
            # Errors go to stderr, which procs sends to mariadbd.log.
        ],
        pid_file=home / "mariadbd.pid",
        log_file=log,
    )
    (home / "port").write_text(f"{port}\n")
    procs.wait_for_port(HOST, port, what="mariadb", timeout=START_TIMEOUT, pid=pid, log_file=log)


def _ensure_admin(home: Path, password: str) -> None:
    """Create or update the admin accounts as root over the socket (idempotent).

    The mariadb client reads the SQL from stdin so the password never shows in argv; its
    error output is redacted before it reaches an exception.
    """
    statements = ["DROP USER IF EXISTS ''@'localhost'"]
    for host in ADMIN_HOSTS:
        account = f"'{ADMIN_USER}'@'{host}'"
        statements += [
            f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY '{password}'",
            f"ALTER USER {account} IDENTIFIED BY '{password}'",
            f"GRANT ALL PRIVILEGES ON *.* TO {account} WITH GRANT OPTION",
        ]
    sql = ";\n".join(statements) + ";\n"
    result = subprocess.run(
        [
            _program("mariadb"),
            "--no-defaults",
            f"--socket={home / 'mariadbd.sock'}",
            "--user=root",
            "--batch",
        ],
        input=sql.encode(),
        capture_output=True,
        check=False,
        # The client honours MYSQL_HOST / MYSQL_PWD: with another platform's values in the
        # environment it would log in over TCP to that server instead of this socket.
        env={k: v for k, v in os.environ.items() if not k.startswith("MYSQL_")},
    )
    if result.returncode != 0:
        detail = result.stderr.decode(errors="replace").replace(password, "***")
        raise procs.StartupError(f"creating {ADMIN_USER} failed: {detail}")


def _running_server(home: Path) -> int | None:
    """The pid of this directory's mariadbd, from either pid file (ours or the server's)."""
    for name in ("mariadbd.pid", "server.pid"):
        pid = procs.running_pid(home / name, SERVER)
        if pid is not None:
            return pid
    return None


def _recorded_port(home: Path) -> int | None:
    try:
        return int((home / "port").read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _stop_server(home: Path) -> None:
    """SIGTERM (a clean InnoDB shutdown), SIGKILL if it hangs; via both pid files."""
    procs.stop(home / "mariadbd.pid", name=SERVER, grace=10.0)
    procs.stop(home / "server.pid", name=SERVER, grace=10.0)


def up(local: Path, env: dict[str, str]) -> dict[str, str]:
    """Start (or reuse) the platform's MariaDB and return the admin's MYSQL_* variables.

    ``env`` is unused: MariaDB comes first and depends on nothing.
    """
    del env
    home = _home(local)
    home.mkdir(parents=True, exist_ok=True)
    port = _port()
    password = _admin_password(home)
    exports = _exports(port, password)

    running = _running_server(home) is not None
    if running and _recorded_port(home) != port:
        _stop_server(home)  # listening on another port than asked for: restart
        running = False
    if running:
        if _admin_login_ok(port, password):
            return exports
        # Alive but not (yet) answering: maybe still starting, maybe a lost password file.
        procs.wait_for_port(HOST, port, what="mariadb", timeout=START_TIMEOUT)
    else:
        _ensure_installed()
        _initialise(home)
        _start(home, port)
    _ensure_admin(home, password)
    deadline = time.monotonic() + 10.0
    while not _admin_login_ok(port, password):
        if time.monotonic() >= deadline:
            raise procs.StartupError(f"mariadb: {ADMIN_USER} cannot log in over TCP")
        time.sleep(0.2)
    return exports


def down(local: Path) -> None:
    """Stop this directory's mariadbd, wait until it is gone and delete ``local/mariadb``."""
    home = _home(local)
    if not home.exists():
        return
    _stop_server(home)
    shutil.rmtree(home)
