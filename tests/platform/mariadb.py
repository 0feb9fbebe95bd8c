"""MariaDB for the local platform: a private mariadbd on 127.0.0.1 with an admin account.

The operator creates one database and user per WordPress environment, so it needs an account
with every privilege and GRANT OPTION; root stays reachable only through the unix socket.
The server is the distribution's mariadbd with its own data directory, socket and port under
``local/mariadb/`` and ``--no-defaults``, so it neither uses nor disturbs a system MariaDB.
See CONTRACT.md for the interface.

TLS, as the shared RDS is configured (HLD: TLS 1.2+ on every connection): a CA of its own
(``local/mariadb/tls/``, made by ``tests.platform.pki`` like the control plane's) signs a
certificate for 127.0.0.1 and localhost; the server takes TLS 1.2 and 1.3 only and
``require_secure_transport=ON`` refuses every TCP login without TLS (the unix socket, which
only root's bootstrap uses, counts as secure). The CA is exported as WPENV_DB_CA_BUNDLE, and
MYSQL_HOME names a directory whose ``my.cnf`` makes the ``mariadb``/``mysql`` CLI use TLS
and verify the server against that CA, so ``source .local/env; mysql`` still works.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pymysql
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.platform import procs
from tests.platform.pki import cert_pem, issue, key_pem, new_key, write_file

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
# What RDS for MySQL 8.0/8.4 supports; older protocol versions are refused by the server.
TLS_VERSIONS = "TLSv1.2,TLSv1.3"
SERVER_NAMES = ("localhost",)  # and HOST as an IP address SAN
CA_BUNDLE_ENV = "WPENV_DB_CA_BUNDLE"


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


@dataclass(frozen=True)
class Tls:
    """Where the server's CA, certificate and key are (PEM), under ``local/mariadb/tls``."""

    dir: Path

    @property
    def ca_cert(self) -> Path:
        """The CA clients trust (WPENV_DB_CA_BUNDLE): it signs the server certificate only."""
        return self.dir / "ca.crt"

    @property
    def server_cert(self) -> Path:
        """mariadbd's certificate, for 127.0.0.1 and localhost."""
        return self.dir / "server.crt"

    @property
    def server_key(self) -> Path:
        """mariadbd's private key (0600)."""
        return self.dir / "server.key"

    def complete(self) -> bool:
        """True when every file exists (a partial set from an interrupted run is redone)."""
        return all(p.is_file() for p in (self.ca_cert, self.server_cert, self.server_key))


def ensure_tls(tls_dir: Path) -> bool:
    """Make the CA and the server certificate unless all exist; True if it made them.

    The CA's key is not kept: nothing else is ever signed with it.
    """
    tls = Tls(tls_dir)
    if tls.complete():
        return False
    tls_dir.mkdir(parents=True, exist_ok=True)
    ca_key = new_key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wpenv-local-mariadb-ca")])
    ca = issue(ca_name, ca_key, issuer=ca_name, issuer_key=ca_key, days=3650, is_ca=True)
    server_key = new_key()
    server = issue(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]),
        server_key,
        issuer=ca_name,
        issuer_key=ca_key,
        days=825,
        usages=[ExtendedKeyUsageOID.SERVER_AUTH],
        sans=[
            *map(x509.DNSName, SERVER_NAMES),
            x509.IPAddress(ipaddress.IPv4Address(HOST)),
        ],
    )
    write_file(tls.ca_cert, cert_pem(ca), secret=False)
    write_file(tls.server_cert, cert_pem(server), secret=False)
    write_file(tls.server_key, key_pem(server_key), secret=True)
    return True


def _client_config(home: Path) -> Path:
    """Write ``client/my.cnf`` (the CLI's TLS settings and the admin user); its directory.

    Exported as MYSQL_HOME, which the MariaDB client reads ``my.cnf`` from. It holds no
    password: the CLI takes that from MYSQL_PWD.
    """
    directory = home / "client"
    directory.mkdir(exist_ok=True)
    text = (
        "[client]\n"
        f"user={ADMIN_USER}\n"
        f"ssl-ca={Tls(home / 'tls').ca_cert}\n"
        "ssl-verify-server-cert\n"
        f"tls-version={TLS_VERSIONS}\n"
    )
    write_file(directory / "my.cnf", text.encode(), secret=False)
    return directory


def _exports(home: Path, port: int, password: str) -> dict[str, str]:
    return {
        "MYSQL_HOST": HOST,
        "MYSQL_TCP_PORT": str(port),
        "MYSQL_USER": ADMIN_USER,
        "MYSQL_PWD": password,
        "MYSQL_HOME": str(home / "client"),
        CA_BUNDLE_ENV: str(Tls(home / "tls").ca_cert),
    }


def _admin_login_ok(home: Path, port: int, password: str) -> bool:
    """True if the admin can log in over verified TLS: the health check for reusing a server."""
    try:
        connection = pymysql.connect(
            host=HOST,
            port=port,
            user=ADMIN_USER,
            password=password,
            connect_timeout=3,
            ssl_ca=str(Tls(home / "tls").ca_cert),
            ssl_verify_identity=True,
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
    tls = Tls(home / "tls")
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
            f"--ssl-ca={tls.ca_cert}",
            f"--ssl-cert={tls.server_cert}",
            f"--ssl-key={tls.server_key}",
            f"--tls-version={TLS_VERSIONS}",
            "--require-secure-transport=ON",
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
    renewed = ensure_tls(home / "tls")
    _client_config(home)
    exports = _exports(home, port, password)

    running = _running_server(home) is not None
    if running and (renewed or _recorded_port(home) != port):
        _stop_server(home)  # another port than asked for, or new certificates: restart
        running = False
    if running:
        if _admin_login_ok(home, port, password):
            return exports
        # Alive but not (yet) answering: maybe still starting, maybe a lost password file.
        procs.wait_for_port(HOST, port, what="mariadb", timeout=START_TIMEOUT)
    else:
        _ensure_installed()
        _initialise(home)
        _start(home, port)
    _ensure_admin(home, password)
    deadline = time.monotonic() + 10.0
    while not _admin_login_ok(home, port, password):
        if time.monotonic() >= deadline:
            raise procs.StartupError(f"mariadb: {ADMIN_USER} cannot log in over TCP")
        time.sleep(0.2)
    return exports


def stop(local: Path) -> None:
    """Stop the server (a clean shutdown), keeping its data: an outage, not `down`."""
    _stop_server(_home(local))


def start(local: Path) -> dict[str, str]:
    """Start a stopped server again on its port, with its data; the admin's variables."""
    return up(local, {})


def down(local: Path) -> None:
    """Stop this directory's mariadbd, wait until it is gone and delete ``local/mariadb``."""
    home = _home(local)
    if not home.exists():
        return
    _stop_server(home)
    shutil.rmtree(home)
