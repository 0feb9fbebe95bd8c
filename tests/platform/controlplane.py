"""A real Kubernetes control plane (etcd + kube-apiserver) on 127.0.0.1, like envtest.

Why: the operator's end-to-end tests need real API semantics (CRD validation, RBAC,
server-side apply, finalizers, watches) but no nodes, so no kubelet, scheduler or
controller-manager run. Consequence worth knowing: nothing finalizes namespaces, so a
deleted namespace stays Terminating, and no ServiceAccount token controller exists (hence
the ServiceAccount admission plugin is disabled). Service account tokens still come from
the TokenRequest API, signed with the key pair in ``pki/`` (made once, kept with the rest
of the PKI): the end-to-end suite runs the operator with one (tests/platform/kube.py).

Layout (see CONTRACT.md): ``local/controlplane/{pki,etcd,*.pid,*.log}`` and ``local/kubeconfig``.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.platform import procs
from tests.platform.pki import cert_pem, issue, key_pem, new_key, write_file

__all__ = ["Pki", "down", "ensure_pki", "restart_apiserver", "up"]

HOST = "127.0.0.1"
SERVICE_CIDR = "10.96.0.0/24"
ADMIN_USER = "wpenv-admin"
ADMIN_GROUP = "system:masters"
CONTEXT = "wpenv-local"
BUILD_SCRIPT = Path(__file__).with_name("build-control-plane.sh")
READY_TIMEOUT = 60.0
ETCD_TIMEOUT = 30.0

# The serving certificate also names the in-cluster identities of the API server (the
# first service IP and the kubernetes.default names) so that clients configured for
# in-cluster access can verify it too.
_SERVING_DNS = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
_SERVING_IPS = (
    ipaddress.IPv4Address(HOST),
    ipaddress.IPv4Network(SERVICE_CIDR)[1],  # the "kubernetes" Service's ClusterIP
)


# --------------------------------------------------------------------------- PKI


@dataclass(frozen=True)
class Pki:
    """Paths of the files in the PKI directory (all PEM)."""

    dir: Path

    @property
    def ca_cert(self) -> Path:
        """The CA that signs both the serving and the client certificates."""
        return self.dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        """The CA's private key (kept so later certificates can be issued by hand)."""
        return self.dir / "ca.key"

    @property
    def serving_cert(self) -> Path:
        """kube-apiserver's TLS certificate."""
        return self.dir / "apiserver.crt"

    @property
    def serving_key(self) -> Path:
        """kube-apiserver's TLS private key."""
        return self.dir / "apiserver.key"

    @property
    def admin_cert(self) -> Path:
        """Client certificate for CN=wpenv-admin, O=system:masters (cluster-admin)."""
        return self.dir / "admin.crt"

    @property
    def admin_key(self) -> Path:
        """Private key of the admin client certificate."""
        return self.dir / "admin.key"

    @property
    def sa_key(self) -> Path:
        """RSA private key that signs ServiceAccount tokens."""
        return self.dir / "sa.key"

    @property
    def sa_pub(self) -> Path:
        """Public half of :attr:`sa_key`, used to verify ServiceAccount tokens."""
        return self.dir / "sa.pub"

    def files(self) -> tuple[Path, ...]:
        """Every file the PKI consists of."""
        return (
            self.ca_cert,
            self.ca_key,
            self.serving_cert,
            self.serving_key,
            self.admin_cert,
            self.admin_key,
            self.sa_key,
            self.sa_pub,
        )

    def complete(self) -> bool:
        """True when every file exists (a partial PKI from an interrupted run is redone)."""
        return all(p.is_file() for p in self.files())


def ensure_pki(pki_dir: Path) -> Pki:
    """Create the CA, serving cert, admin client cert and SA key pair unless all exist.

    Reusing an existing PKI keeps an issued kubeconfig valid across restarts of the
    processes; a partial one (interrupted run) is regenerated from scratch.
    """
    pki = Pki(pki_dir)
    if pki.complete():
        return pki
    pki_dir.mkdir(parents=True, exist_ok=True)

    ca_key = new_key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wpenv-local-ca")])
    ca = issue(ca_name, ca_key, issuer=ca_name, issuer_key=ca_key, days=3650, is_ca=True)

    serving_key = new_key()
    serving = issue(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]),
        serving_key,
        issuer=ca_name,
        issuer_key=ca_key,
        days=365,
        usages=[ExtendedKeyUsageOID.SERVER_AUTH],
        sans=[*map(x509.DNSName, _SERVING_DNS), *map(x509.IPAddress, _SERVING_IPS)],
    )

    # kube-apiserver maps a client certificate's CN to the user and each O to a group;
    # system:masters is bound to cluster-admin by RBAC's bootstrap policy.
    admin_key = new_key()
    admin = issue(
        x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, ADMIN_GROUP),
                x509.NameAttribute(NameOID.COMMON_NAME, ADMIN_USER),
            ]
        ),
        admin_key,
        issuer=ca_name,
        issuer_key=ca_key,
        days=365,
        usages=[ExtendedKeyUsageOID.CLIENT_AUTH],
    )

    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    write_file(pki.ca_cert, cert_pem(ca), secret=False)
    write_file(pki.ca_key, key_pem(ca_key), secret=True)
    write_file(pki.serving_cert, cert_pem(serving), secret=False)
    write_file(pki.serving_key, key_pem(serving_key), secret=True)
    write_file(pki.admin_cert, cert_pem(admin), secret=False)
    write_file(pki.admin_key, key_pem(admin_key), secret=True)
    write_file(pki.sa_key, key_pem(sa_key), secret=True)
    write_file(
        pki.sa_pub,
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        secret=False,
    )
    return pki


# --------------------------------------------------------------------------- processes


@dataclass(frozen=True)
class _Layout:
    """Where the component keeps its state, and the ports it uses."""

    local: Path
    etcd_port: int
    etcd_peer_port: int
    apiserver_port: int

    @property
    def root(self) -> Path:
        """``local/controlplane``: removed wholesale by :func:`down`."""
        return self.local / "controlplane"

    @property
    def pki(self) -> Pki:
        """The certificates and keys."""
        return Pki(self.root / "pki")

    @property
    def kubeconfig(self) -> Path:
        """``local/kubeconfig``: outside root because it is what users point KUBECONFIG at."""
        return self.local / "kubeconfig"

    def pid(self, name: str) -> Path:
        """Pid file of process ``name``."""
        return self.root / f"{name}.pid"

    def log(self, name: str) -> Path:
        """Log file of process ``name``."""
        return self.root / f"{name}.log"

    @property
    def etcd_url(self) -> str:
        """etcd's client URL."""
        return f"http://{HOST}:{self.etcd_port}"

    @property
    def apiserver_url(self) -> str:
        """kube-apiserver's base URL."""
        return f"https://{HOST}:{self.apiserver_port}"


def _port(env: dict[str, str], name: str, default: int) -> int:
    """A port from ``env`` or the process environment, else the CONTRACT.md default."""
    value = env.get(name) or os.environ.get(name)
    return int(value) if value else default


def _layout(local: Path, env: dict[str, str] | None = None) -> _Layout:
    """Resolve the layout for ``local`` with port overrides from ``env``."""
    env = env or {}
    return _Layout(
        local=local,
        etcd_port=_port(env, "WPENV_ETCD_PORT", 23790),
        etcd_peer_port=_port(env, "WPENV_ETCD_PEER_PORT", 23800),
        apiserver_port=_port(env, "WPENV_APISERVER_PORT", 26443),
    )


def _binaries() -> Path:
    """Directory holding kube-apiserver and etcd, built (once, cached) by the build script.

    The build's progress goes to our stderr; its stdout's last line is the directory.
    """
    result = subprocess.run(
        ["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False
    )
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"{BUILD_SCRIPT.name} failed (exit {result.returncode})")
    bin_dir = Path(lines[-1])
    for exe in ("etcd", "kube-apiserver"):
        if not os.access(bin_dir / exe, os.X_OK):
            raise RuntimeError(f"{BUILD_SCRIPT.name} printed {bin_dir}, which has no {exe}")
    return bin_dir


def _client_ssl(pki: Pki) -> ssl.SSLContext:
    """TLS context trusting our CA and presenting the admin certificate.

    The admin identity is used for /readyz because anonymous access to it depends on an
    RBAC binding that only exists once the bootstrap post-start hook has run.
    """
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    ctx.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
    return ctx


def _etcd_healthy(lay: _Layout) -> bool:
    """etcd answers its health endpoint."""
    return procs.url_ok(f"{lay.etcd_url}/health", expect='"health":"true"')


def _apiserver_ready(lay: _Layout) -> bool:
    """kube-apiserver's /readyz says ok (all its post-start hooks have finished)."""
    return procs.url_ok(
        f"{lay.apiserver_url}/readyz", ssl_context=_client_ssl(lay.pki), expect="ok"
    )


def _etcd_argv(bin_dir: Path, lay: _Layout) -> list[str]:
    """etcd flags: a single-member cluster on loopback, fsync off (throwaway data)."""
    peer = f"http://{HOST}:{lay.etcd_peer_port}"
    return [
        str(bin_dir / "etcd"),
        "--name=wpenv",
        f"--data-dir={lay.root / 'etcd'}",
        f"--listen-client-urls={lay.etcd_url}",
        f"--advertise-client-urls={lay.etcd_url}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=wpenv={peer}",
        "--initial-cluster-state=new",
        "--unsafe-no-fsync=true",
        "--log-level=warn",
    ]


def _apiserver_argv(bin_dir: Path, lay: _Layout) -> list[str]:
    """kube-apiserver flags (names checked against the v1.37 binary's --help)."""
    pki = lay.pki
    return [
        str(bin_dir / "kube-apiserver"),
        f"--etcd-servers={lay.etcd_url}",
        f"--bind-address={HOST}",
        f"--secure-port={lay.apiserver_port}",
        f"--advertise-address={HOST}",
        # 1.37 refuses a loopback advertise address with an endpoint reconciler; with none,
        # the "kubernetes" Service exists but has no endpoints, which no test needs.
        "--endpoint-reconciler-type=none",
        # Not used for serving (tls-* files are given) but keeps it out of /var/run.
        f"--cert-dir={pki.dir}",
        f"--tls-cert-file={pki.serving_cert}",
        f"--tls-private-key-file={pki.serving_key}",
        f"--client-ca-file={pki.ca_cert}",
        # TokenRequest (`kubectl create token`): issued and signed with sa.key, verified
        # with sa.pub; the operator's e2e identity is such a token.
        f"--service-account-issuer={lay.apiserver_url}",
        f"--service-account-key-file={pki.sa_pub}",
        f"--service-account-signing-key-file={pki.sa_key}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--authorization-mode=RBAC",
        "--allow-privileged=true",
        # No controller-manager creates ServiceAccounts/tokens, so pods would be rejected.
        "--disable-admission-plugins=ServiceAccount",
        "--profiling=false",
    ]


def _write_kubeconfig(lay: _Layout) -> None:
    """Write ``local/kubeconfig`` with embedded CA and admin client cert (self-contained)."""
    pki = lay.pki

    def b64(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": CONTEXT,
                "cluster": {
                    "server": lay.apiserver_url,
                    "certificate-authority-data": b64(pki.ca_cert),
                },
            }
        ],
        "users": [
            {
                "name": ADMIN_USER,
                "user": {
                    "client-certificate-data": b64(pki.admin_cert),
                    "client-key-data": b64(pki.admin_key),
                },
            }
        ],
        "contexts": [
            {
                "name": CONTEXT,
                "context": {"cluster": CONTEXT, "user": ADMIN_USER, "namespace": "default"},
            }
        ],
        "current-context": CONTEXT,
        "preferences": {},
    }
    tmp = lay.kubeconfig.with_name(lay.kubeconfig.name + ".tmp")
    write_file(tmp, yaml.safe_dump(config, sort_keys=False).encode(), secret=True)
    tmp.replace(lay.kubeconfig)


def _ensure_etcd(bin_dir: Path, lay: _Layout) -> None:
    """Reuse a live, healthy etcd or (re)start it and wait for /health."""
    pid_file, log_file = lay.pid("etcd"), lay.log("etcd")
    if procs.running_pid(pid_file, "etcd") is not None and _etcd_healthy(lay):
        return
    procs.stop(pid_file, name="etcd")
    procs.require_port_free(HOST, lay.etcd_port, "etcd")
    procs.require_port_free(HOST, lay.etcd_peer_port, "etcd (peer)")
    pid = procs.start_detached(_etcd_argv(bin_dir, lay), pid_file=pid_file, log_file=log_file)
    procs.wait_for(
        lambda: _etcd_healthy(lay),
        what=f"etcd on {lay.etcd_url}",
        timeout=ETCD_TIMEOUT,
        pid=pid,
        log_file=log_file,
    )


def _ensure_apiserver(bin_dir: Path, lay: _Layout) -> None:
    """Reuse a live, ready kube-apiserver or (re)start it and wait for /readyz."""
    pid_file, log_file = lay.pid("kube-apiserver"), lay.log("kube-apiserver")
    if procs.running_pid(pid_file, "kube-apiserver") is not None and _apiserver_ready(lay):
        return
    procs.stop(pid_file, name="kube-apiserver")
    procs.require_port_free(HOST, lay.apiserver_port, "kube-apiserver")
    pid = procs.start_detached(_apiserver_argv(bin_dir, lay), pid_file=pid_file, log_file=log_file)
    procs.wait_for(
        lambda: _apiserver_ready(lay),
        what=f"kube-apiserver on {lay.apiserver_url}",
        timeout=READY_TIMEOUT,
        pid=pid,
        log_file=log_file,
    )


def _all_up(lay: _Layout) -> bool:
    """Both processes alive per their pid files, the API ready, and the kubeconfig present."""
    return (
        lay.kubeconfig.is_file()
        and lay.pki.complete()
        and procs.running_pid(lay.pid("etcd"), "etcd") is not None
        and procs.running_pid(lay.pid("kube-apiserver"), "kube-apiserver") is not None
        and _apiserver_ready(lay)
    )


def up(local: Path, env: dict[str, str]) -> dict[str, str]:
    """Start (or reuse) etcd and kube-apiserver; return ``{"KUBECONFIG": ...}``.

    Idempotent: a running, ready control plane is reused without touching it. Otherwise the
    binaries are built if needed, the PKI is created if missing, and whichever process is not
    healthy is (re)started; etcd data survives such a restart.
    """
    lay = _layout(local, env)
    exported = {"KUBECONFIG": str(lay.kubeconfig)}
    if _all_up(lay):
        return exported
    bin_dir = _binaries()
    lay.root.mkdir(parents=True, exist_ok=True)
    ensure_pki(lay.pki.dir)
    _write_kubeconfig(lay)
    _ensure_etcd(bin_dir, lay)
    _ensure_apiserver(bin_dir, lay)
    return exported


def restart_apiserver(local: Path, env: dict[str, str] | None = None) -> None:
    """Stop kube-apiserver (SIGTERM, as a control-plane upgrade replaces it) and start it
    again with the same flags, waiting for /readyz. etcd keeps running, so every object,
    finalizer and token survives; clients see refused connections meanwhile."""
    lay = _layout(local, env)
    procs.stop(lay.pid("kube-apiserver"), name="kube-apiserver")
    _ensure_apiserver(_binaries(), lay)


def down(local: Path) -> None:
    """Stop kube-apiserver, then etcd (TERM, then KILL), and delete the component's state."""
    lay = _layout(local)
    procs.stop(lay.pid("kube-apiserver"), name="kube-apiserver")
    procs.stop(lay.pid("etcd"), name="etcd")
    shutil.rmtree(lay.root, ignore_errors=True)
    lay.kubeconfig.unlink(missing_ok=True)
