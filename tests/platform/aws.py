"""The platform's AWS: a moto server with the simulator, and the shared infrastructure in it.

In production Terraform owns the shared infrastructure (VPC, subnets, security groups, ECS
cluster, EFS, the pool of internal ALBs, each with its HTTPS listener and ACM certificate,
archive bucket, RDS master secret) and the operator only reads its ids from WPENV_*
settings. Here ``up`` starts moto (motoserver.py) and :func:`bootstrap` plays Terraform's
part, idempotently: everything is looked up by name or Name tag first, so a second ``up``
against a running server creates nothing.
See CONTRACT.md for the component interface.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import sys
import time
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.platform import loadbalancer, pki, procs, wordpress
from tests.platform.fidelity.iam_boundary import BOUNDARY_POLICY

log = logging.getLogger("wpenv.platform.aws")

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
DEFAULT_PORT = 25000
PORT_ENV = "WPENV_MOTO_PORT"
REGION = "us-east-1"
ACCESS_KEY = "testing"
MODULE = "tests.platform.motoserver"
HEALTH_PATH = "/wpenv/health"
START_TIMEOUT = 60.0

SHARED_TAG = {"wpenv.bbws.io/shared": "true"}
VPC_NAME = "wpenv-shared"
VPC_CIDR = "10.20.0.0/16"
SUBNETS = (("wpenv-private-a", "10.20.1.0/24", "a"), ("wpenv-private-b", "10.20.2.0/24", "b"))
ALB_SG_NAME = "wpenv-alb"
EFS_SG_NAME = "wpenv-efs"
CLUSTER_NAME = "wpenv"
EFS_TOKEN = "wpenv-shared"
# The load balancer pool tenants are placed on (WPENV_LOAD_BALANCER_ARNS), in fill order:
# ELBv2's quotas are per load balancer, so capacity grows by adding one. Each has one HTTPS
# listener, as Cognito accepts only https callback URLs, and HTTP redirecting to it.
ALB_NAMES = ("wpenv-internal-1", "wpenv-internal-2")
# More of them for a benchmark of more than 200 tenants (100 rules per load balancer).
POOL_SIZE_ENV = "WPENV_LOAD_BALANCER_POOL_SIZE"
BOOTSTRAP_ATTEMPTS = 12
HTTPS_PORT = 443
HTTP_PORT = 80
LISTENER_PORTS = (HTTP_PORT, HTTPS_PORT)
# TLS 1.3 and 1.2, nothing older: the policy AWS recommends for ALBs ("Security policies for
# your Application Load Balancer").
SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
CERTIFICATE_NAME = "wpenv-alb"
CERTIFICATE_KEY_TYPE = "EC_prime256v1"
ARCHIVE_BUCKET = "wpenv-archive"
# Seconds a new IAM role stays unusable by ECS (fidelity/iam_propagation.py; default 2).
IAM_PROPAGATION_ENV = "WPENV_IAM_PROPAGATION_SECONDS"
# Seconds a deleted service drains, and a stopped task's network interface lingers
# (simulator.py; default 2 each).
LIFECYCLE_ENVS = ("WPENV_ECS_DRAIN_SECONDS", "WPENV_ENI_RELEASE_SECONDS")
MASTER_SECRET_NAME = "wpenv/rds-master"
ROTATION_MASTER_SECRET_NAME = "wpenv/rds-rotation-master"
CA_BUNDLE_ENV = "WPENV_DB_CA_BUNDLE"
# The stub rotation function of tenant DB secrets (its testSecret: fidelity/rotation.py).
ROTATION_FUNCTION = "wpenv-rotate-mysql"
# The permissions boundary of every tenant role (fidelity/iam_boundary.py requires it).
BOUNDARY_DOCUMENT = REPO / "manifests" / "overlays" / "production" / "tenant-boundary.json"
# What the MariaDB component exports; used when it did not run (bootstrap says so).
MYSQL_DEFAULTS = {
    "MYSQL_HOST": "127.0.0.1",
    "MYSQL_TCP_PORT": "23306",
    "MYSQL_USER": "wpenv_admin",
    "MYSQL_PWD": "",
}

ClientFactory = Callable[[str], Any]


# --- the component -------------------------------------------------------------------------


def _home(local: Path) -> Path:
    return local / "aws"


def _port() -> int:
    return int(os.environ.get(PORT_ENV, str(DEFAULT_PORT)))


def _endpoint(port: int) -> str:
    return f"http://{HOST}:{port}"


def _server_pid(pid_file: Path) -> int | None:
    """The pid in ``pid_file`` if it is alive *and* runs our motoserver module.

    Checking the command line (not just the pid) keeps a reused pid from being adopted or
    killed, whatever interpreter path started the server.
    """
    pid = procs.running_pid(pid_file)
    if pid is None:
        return None
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return pid  # no /proc: trust the pid file
    return pid if MODULE.encode() in argv else None


def _healthy(port: int) -> bool:
    """moto answers and its simulator thread is alive."""
    return procs.url_ok(_endpoint(port) + HEALTH_PATH, expect='"simulator": "ok"')


def _wait_port_released(home: Path, timeout: float = 5.0) -> None:
    """After our server died, wait until the kernel drops its listening socket.

    A killed server's socket can outlive it briefly (seen: ~1 s with a connection still
    queued); without this wait a restart would take its own leftover for a foreign process.
    """
    try:
        port = int((home / "moto.port").read_text())
    except (OSError, ValueError):
        return
    deadline = time.monotonic() + timeout
    while procs.port_open(HOST, port) and time.monotonic() < deadline:
        time.sleep(0.1)


def _start_server(home: Path, port: int, env: Mapping[str, str]) -> None:
    """Start motoserver detached and wait until moto and the simulator answer."""
    _wait_port_released(home)
    procs.require_port_free(HOST, port, "moto")
    (home / "moto.port").write_text(f"{port}\n")
    log_file = home / "moto.log"
    child_env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for name in ("WPENV_SIM_DELAY_SECONDS", "WPENV_SIM_PERIOD_SECONDS"):
        if name in env:
            child_env[name] = env[name]
    for name in (IAM_PROPAGATION_ENV, *LIFECYCLE_ENVS):
        if name in env:
            child_env[name] = env[name]
    if CA_BUNDLE_ENV in env:  # the emulated rotation test step logs in over verified TLS
        child_env[CA_BUNDLE_ENV] = env[CA_BUNDLE_ENV]
    # The data plane (wordpress.py): on unless WPENV_DATA_PLANE=off (the tests' default).
    if data_plane_on(env):
        wordpress.ensure_installed()
    child_env[wordpress.ENABLED_ENV] = "on" if data_plane_on(env) else "off"
    child_env[wordpress.STATE_ENV] = str(home / "data-plane")
    child_env[wordpress.EFS_ENV] = str(home.parent / "efs")
    # loadbalancer.py: each ALB on an address of a loopback /24 of this platform's own.
    child_env[loadbalancer.NETWORK_ENV] = loadbalancer.network_for(port)
    # chaos.py: WPENV_AWS_FAULT_RATE, _FAULT_CODES, _FAULT_SEED and WPENV_AWS_RATE_LIMITS.
    child_env.update({k: v for k, v in env.items() if k.startswith("WPENV_AWS_")})
    # fidelity/elb_quotas.py: WPENV_ELB_RULES_PER_LB and the other ELBv2 quotas.
    child_env.update({k: v for k, v in env.items() if k.startswith("WPENV_ELB_")})
    pid = procs.start_detached(
        [sys.executable, "-m", MODULE, "--host", HOST, "--port", str(port)],
        pid_file=home / "moto.pid",
        log_file=log_file,
        env=child_env,
        cwd=REPO,
    )
    procs.wait_for(
        lambda: _healthy(port),
        what="moto server",
        timeout=START_TIMEOUT,
        pid=pid,
        log_file=log_file,
    )


def data_plane_on(env: Mapping[str, str]) -> bool:
    """WPENV_DATA_PLANE from the components' variables or this process's; default on."""
    raw = env.get(wordpress.ENABLED_ENV) or os.environ.get(wordpress.ENABLED_ENV) or "on"
    return raw.strip().lower() not in ("off", "0", "false", "no")


def clients_for(endpoint: str, attempts: int | None = None) -> ClientFactory:
    """boto3 clients for the moto server, with the platform's fake credentials; `attempts`:
    botocore's standard retries with that many attempts (else its defaults)."""
    session = boto3.session.Session(
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=ACCESS_KEY, region_name=REGION
    )
    config = None if attempts is None else Config(
        retries={"mode": "standard", "max_attempts": attempts})

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=endpoint, config=config)

    return client


def up(local: Path, env: dict[str, str]) -> dict[str, str]:
    """Start (or reuse) moto + simulator, bootstrap the shared infrastructure, export it."""
    home = _home(local)
    home.mkdir(parents=True, exist_ok=True)
    port = _port()
    efs = local / "efs"
    pid = _server_pid(home / "moto.pid")
    if pid is None or not _healthy(port):
        if pid is not None:  # ours but not answering (hung, or simulator dead): replace it
            procs.stop(home / "moto.pid")
        # A fresh moto has no file system: what an earlier one left on "EFS" is orphaned.
        shutil.rmtree(efs, ignore_errors=True)
        _start_server(home, port, env)
    efs.mkdir(parents=True, exist_ok=True)
    endpoint = _endpoint(port)
    # As Terraform does, the bootstrap retries what AWS throttles: CreateLoadBalancer's
    # bucket holds 10 and refills one every 5 s, and a large pool needs more.
    settings = bootstrap(clients_for(endpoint, attempts=BOOTSTRAP_ATTEMPTS), env)
    settings.update(site_access(home, endpoint, settings["WPENV_LOAD_BALANCER_ARNS"].split(",")))
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": ACCESS_KEY,
        **settings,
        "WPENV_EFS_MOUNT_PATH": str(efs),
    }


CA_EXPORT = "WPENV_CA_BUNDLE"  # the PEM a client verifies the load balancers with
RESOLVE_EXPORT = "WPENV_ALB_RESOLVE"  # `host:port:address ...`, curl's --resolve entries
LISTENERS_TIMEOUT = 15.0


def site_access(home: Path, endpoint: str, pool: list[str]) -> dict[str, str]:
    """WPENV_CA_BUNDLE and WPENV_ALB_RESOLVE: how a client on this machine reaches the pool.

    The bundle holds the chains of the pool's listener certificates, as ACM returns them
    (GetCertificate); the entries map each listener's DNS name and port to the loopback
    address its load balancer answers on (loadbalancer.py), once each listener is served.
    """
    elbv2, acm = clients_for(endpoint)("elbv2"), clients_for(endpoint)("acm")
    chains: list[str] = []
    listeners = 0
    for arn in pool:
        for listener in elbv2.describe_listeners(LoadBalancerArn=arn)["Listeners"]:
            listeners += 1
            for certificate in listener.get("Certificates") or []:
                found = acm.get_certificate(CertificateArn=certificate["CertificateArn"])
                chain = str(found.get("CertificateChain") or "")
                if chain and chain not in chains:
                    chains.append(chain)
    bundle = home / "alb-ca.pem"
    bundle.write_text("".join(c.rstrip("\n") + "\n" for c in chains))

    def served() -> list[dict[str, Any]] | None:
        found = [b for b in loadbalancer.read_load_balancers(endpoint) if b["arn"] in pool]
        done = sum(1 for b in found for x in b["listeners"] if x["bound"] or x["error"])
        return found if done >= listeners else None

    procs.wait_for(lambda: served() is not None, what="the load balancers' listeners",
                   timeout=LISTENERS_TIMEOUT)
    balancers = served() or []
    for balancer in balancers:
        for listener in balancer["listeners"]:
            if listener["error"]:
                log.warning("%s port %s is not served: %s", balancer["name"],
                            listener["port"], listener["error"])
    entries = loadbalancer.resolve_entries(balancers)
    return {CA_EXPORT: str(bundle), RESOLVE_EXPORT: " ".join(entries)}


def down(local: Path) -> None:
    """Stop the server (TERM, then KILL) and delete local/aws and local/efs."""
    home = _home(local)
    pid_file = home / "moto.pid"
    if _server_pid(pid_file) is not None:
        procs.stop(pid_file, grace=20.0)  # the server stops its tasks' PHP first
        _wait_port_released(home)
    pid_file.unlink(missing_ok=True)
    wordpress.stop_leftovers(home / "data-plane")  # tasks of a server that was killed
    shutil.rmtree(home, ignore_errors=True)
    shutil.rmtree(local / "efs", ignore_errors=True)


# --- the bootstrap (Terraform's part) --------------------------------------------------------


@dataclass(frozen=True)
class MySQL:
    """Where the shared "RDS" (the MariaDB component) is, and whether defaults filled gaps."""

    host: str
    port: int
    username: str
    password: str
    defaulted: tuple[str, ...]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> MySQL:
        """Read the MariaDB component's MYSQL_* exports, defaulting the missing ones."""
        defaulted = tuple(key for key in MYSQL_DEFAULTS if key not in env)
        merged = {key: env.get(key, default) for key, default in MYSQL_DEFAULTS.items()}
        return cls(
            host=merged["MYSQL_HOST"],
            port=int(merged["MYSQL_TCP_PORT"]),
            username=merged["MYSQL_USER"],
            password=merged["MYSQL_PWD"],
            defaulted=defaulted,
        )

    def secret(self) -> dict[str, object]:
        """The secret's JSON as RDS writes a managed master user secret: the login only.

        RDS keeps ``username`` and ``password`` there and nothing else (no host, port or
        engine); the endpoint is a Terraform output (WPENV_DB_HOST / WPENV_DB_PORT).
        """
        return {"username": self.username, "password": self.password}


def _tags(name: str | None = None) -> list[dict[str, str]]:
    """The shared tag (and a Name), in the Key/Value form most AWS APIs take."""
    tags = dict(SHARED_TAG)
    if name is not None:
        tags["Name"] = name
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _ensure_vpc(ec2: Any) -> str:
    found = ec2.describe_vpcs(
        Filters=[
            {"Name": "tag:Name", "Values": [VPC_NAME]},
            {"Name": "cidr", "Values": [VPC_CIDR]},
        ]
    )["Vpcs"]
    if found:
        return str(found[0]["VpcId"])
    vpc_id = str(
        ec2.create_vpc(
            CidrBlock=VPC_CIDR,
            TagSpecifications=[{"ResourceType": "vpc", "Tags": _tags(VPC_NAME)}],
        )["Vpc"]["VpcId"]
    )
    for attribute in ("EnableDnsSupport", "EnableDnsHostnames"):  # EFS needs DNS names
        ec2.modify_vpc_attribute(VpcId=vpc_id, **{attribute: {"Value": True}})
    log.info("created VPC %s", vpc_id)
    return vpc_id


def _ensure_subnet(ec2: Any, vpc_id: str, name: str, cidr: str, zone: str) -> str:
    found = ec2.describe_subnets(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "tag:Name", "Values": [name]},
        ]
    )["Subnets"]
    if found:
        return str(found[0]["SubnetId"])
    subnet_id = str(
        ec2.create_subnet(
            VpcId=vpc_id,
            CidrBlock=cidr,
            AvailabilityZone=zone,
            TagSpecifications=[{"ResourceType": "subnet", "Tags": _tags(name)}],
        )["Subnet"]["SubnetId"]
    )
    log.info("created subnet %s (%s, %s)", subnet_id, cidr, zone)
    return subnet_id


def _ensure_security_group(
    ec2: Any, vpc_id: str, name: str, description: str, tcp_ports: tuple[int, ...]
) -> str:
    """A security group admitting ``tcp_ports`` from the VPC; missing rules are added."""
    found = ec2.describe_security_groups(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "group-name", "Values": [name]},
        ]
    )["SecurityGroups"]
    if found:
        group = found[0]
    else:
        group_id = ec2.create_security_group(
            GroupName=name,
            Description=description,
            VpcId=vpc_id,
            TagSpecifications=[{"ResourceType": "security-group", "Tags": _tags(name)}],
        )["GroupId"]
        group = {"GroupId": group_id, "IpPermissions": []}
        log.info("created security group %s (%s)", group_id, name)
    have = {
        (p.get("IpProtocol"), p.get("FromPort"), p.get("ToPort"), r.get("CidrIp"))
        for p in group.get("IpPermissions", [])
        for r in p.get("IpRanges", [])
    }
    missing = [
        {
            "IpProtocol": "tcp",
            "FromPort": port,
            "ToPort": port,
            "IpRanges": [{"CidrIp": VPC_CIDR, "Description": "from the VPC"}],
        }
        for port in tcp_ports
        if ("tcp", port, port, VPC_CIDR) not in have
    ]
    if missing:
        ec2.authorize_security_group_ingress(GroupId=group["GroupId"], IpPermissions=missing)
    return str(group["GroupId"])


def _ensure_cluster(ecs: Any) -> str:
    found = ecs.describe_clusters(clusters=[CLUSTER_NAME])["clusters"]
    if any(c.get("status") == "ACTIVE" for c in found):
        return CLUSTER_NAME
    ecs.create_cluster(
        clusterName=CLUSTER_NAME,
        tags=[{"key": key, "value": value} for key, value in SHARED_TAG.items()],
    )
    log.info("created ECS cluster %s", CLUSTER_NAME)
    return CLUSTER_NAME


def _ensure_file_system(efs: Any, subnet_ids: list[str], security_group_id: str) -> str:
    """The shared EFS file system with one mount target per private subnet."""
    found = efs.describe_file_systems(CreationToken=EFS_TOKEN)["FileSystems"]
    if found:
        fs_id = str(found[0]["FileSystemId"])
    else:
        fs_id = str(
            efs.create_file_system(
                CreationToken=EFS_TOKEN,
                PerformanceMode="generalPurpose",
                Encrypted=True,
                Tags=_tags("wpenv-shared"),
            )["FileSystemId"]
        )
        log.info("created EFS file system %s", fs_id)
    _wait_available(efs, fs_id)
    targets = efs.describe_mount_targets(FileSystemId=fs_id)["MountTargets"]
    mounted = {target["SubnetId"] for target in targets}
    for subnet_id in subnet_ids:
        if subnet_id not in mounted:
            efs.create_mount_target(
                FileSystemId=fs_id, SubnetId=subnet_id, SecurityGroups=[security_group_id]
            )
            log.info("created EFS mount target in %s", subnet_id)
    return fs_id


def _wait_available(efs: Any, fs_id: str, timeout: float = 30.0) -> None:
    """Mount targets need an available file system (moto: at once; AWS: seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        state = efs.describe_file_systems(FileSystemId=fs_id)["FileSystems"][0]["LifeCycleState"]
        if state == "available" or time.monotonic() >= deadline:
            return
        time.sleep(0.5)


def _ensure_load_balancer(
    elbv2: Any, name: str, subnet_ids: list[str], security_group_id: str
) -> tuple[str, str]:
    """One internal ALB of the pool: (ARN, DNS name)."""
    try:
        found = elbv2.describe_load_balancers(Names=[name])["LoadBalancers"]
    except ClientError as error:
        if _error_code(error) != "LoadBalancerNotFound":
            raise
        found = []
    if not found:
        found = elbv2.create_load_balancer(
            Name=name,
            Subnets=subnet_ids,
            SecurityGroups=[security_group_id],
            Scheme="internal",
            Type="application",
            IpAddressType="ipv4",
            Tags=_tags(name),
        )["LoadBalancers"]
        log.info("created ALB %s", found[0]["LoadBalancerArn"])
    return str(found[0]["LoadBalancerArn"]), str(found[0]["DNSName"])


NOT_FOUND_ACTION = {
    "Type": "fixed-response",
    "FixedResponseConfig": {
        "StatusCode": "404",
        "ContentType": "text/plain",
        "MessageBody": "No WordPress environment here.",
    },
}


def _redirect_action(https_port: int) -> dict[str, Any]:
    """HTTP_301 to the same host, path and query on `https_port`."""
    return {
        "Type": "redirect",
        "RedirectConfig": {"Protocol": "HTTPS", "Port": str(https_port), "StatusCode": "HTTP_301"},
    }


def _issue_certificate(domain: str) -> tuple[bytes, bytes, bytes]:
    """(certificate, private key, chain) in PEM for `domain`, from a CA made for it.

    An internal ALB's name is nothing a public CA signs; in production the certificate is
    ACM Private CA's or imported. Here a throwaway CA signs it, with the platform's PKI
    helpers (P-256 keys, which ACM imports as EC_prime256v1 and ALBs serve).
    """
    ca_key = pki.new_key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wpenv local ALB CA")])
    ca = pki.issue(
        ca_name, ca_key, issuer=ca_name, issuer_key=ca_key, days=3650, is_ca=True
    )
    key = pki.new_key()
    leaf = pki.issue(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)]),
        key,
        issuer=ca_name,
        issuer_key=ca_key,
        days=395,
        usages=[ExtendedKeyUsageOID.SERVER_AUTH],
        sans=[x509.DNSName(domain)],
    )
    return pki.cert_pem(leaf), pki.key_pem(key), pki.cert_pem(ca)


def _ensure_certificate(acm: Any, domain: str) -> str:
    """The ALB's certificate in ACM for `domain` (imported once, found by domain after)."""
    paginator = acm.get_paginator("list_certificates")
    pages = paginator.paginate(
        CertificateStatuses=["ISSUED"], Includes={"keyTypes": [CERTIFICATE_KEY_TYPE]}
    )
    for page in pages:
        for summary in page.get("CertificateSummaryList", []):
            if summary.get("DomainName") == domain:
                return str(summary["CertificateArn"])
    certificate, key, chain = _issue_certificate(domain)
    arn = str(
        acm.import_certificate(
            Certificate=certificate,
            PrivateKey=key,
            CertificateChain=chain,
            Tags=_tags(CERTIFICATE_NAME),
        )["CertificateArn"]
    )
    log.info("imported certificate %s for %s", arn, domain)
    return arn


def _ensure_listeners(elbv2: Any, load_balancer_arn: str, certificate_arn: str) -> str:
    """The ALB's HTTPS listener tenants' rules go into (unmatched: 404); HTTP redirects to it."""
    existing = {
        int(listener["Port"]): listener
        for listener in elbv2.describe_listeners(LoadBalancerArn=load_balancer_arn)["Listeners"]
    }
    if HTTPS_PORT not in existing:
        existing[HTTPS_PORT] = elbv2.create_listener(
            LoadBalancerArn=load_balancer_arn,
            Protocol="HTTPS",
            Port=HTTPS_PORT,
            SslPolicy=SSL_POLICY,
            Certificates=[{"CertificateArn": certificate_arn}],
            DefaultActions=[NOT_FOUND_ACTION],
            Tags=_tags(),
        )["Listeners"][0]
        log.info("created HTTPS listener on port %d", HTTPS_PORT)
    _ensure_redirect(elbv2, load_balancer_arn, existing.get(HTTP_PORT), HTTP_PORT, HTTPS_PORT)
    return str(existing[HTTPS_PORT]["ListenerArn"])


def alb_names() -> tuple[str, ...]:
    """The pool's load balancer names: ALB_NAMES, or WPENV_LOAD_BALANCER_POOL_SIZE of them."""
    size = int(os.environ.get(POOL_SIZE_ENV) or len(ALB_NAMES))
    return tuple(f"wpenv-internal-{i}" for i in range(1, size + 1))


def ensure_load_balancer_pool(
    client: ClientFactory, subnet_ids: list[str], security_group_id: str,
    names: tuple[str, ...] | None = None,
) -> list[str]:
    """The pool's ALBs (ARNs, in fill order), each with its certificate and listeners."""
    elbv2 = client("elbv2")
    arns = []
    for name in alb_names() if names is None else names:
        arn, dns = _ensure_load_balancer(elbv2, name, subnet_ids, security_group_id)
        _ensure_listeners(elbv2, arn, _ensure_certificate(client("acm"), dns))
        arns.append(arn)
    return arns


def _ensure_redirect(
    elbv2: Any, load_balancer_arn: str, found: dict[str, Any] | None, port: int, https_port: int
) -> None:
    """An HTTP listener on `port` whose default is a permanent redirect to `https_port`."""
    action = _redirect_action(https_port)
    if found is None:
        elbv2.create_listener(
            LoadBalancerArn=load_balancer_arn,
            Protocol="HTTP",
            Port=port,
            DefaultActions=[action],
            Tags=_tags(),
        )
        log.info("created HTTP listener on port %d redirecting to %d", port, https_port)
        return
    actions = found.get("DefaultActions") or []
    config = (actions[0].get("RedirectConfig") or {}) if len(actions) == 1 else {}
    if (config.get("Protocol"), config.get("Port")) != ("HTTPS", str(https_port)):
        # An older platform's HTTP listener: it becomes the redirect.
        elbv2.modify_listener(ListenerArn=found["ListenerArn"], DefaultActions=[action])
        log.info("listener on port %d now redirects to %d", port, https_port)


def _ensure_bucket(s3: Any) -> str:
    try:
        s3.head_bucket(Bucket=ARCHIVE_BUCKET)
    except ClientError as error:
        if _error_code(error) not in ("404", "NoSuchBucket", "NotFound"):
            raise
        s3.create_bucket(Bucket=ARCHIVE_BUCKET)  # us-east-1 takes no LocationConstraint
        s3.put_bucket_tagging(Bucket=ARCHIVE_BUCKET, Tagging={"TagSet": _tags()})
        s3.put_public_access_block(
            Bucket=ARCHIVE_BUCKET,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
        log.info("created bucket %s", ARCHIVE_BUCKET)
    return ARCHIVE_BUCKET


def _ensure_master_secret(secrets: Any, mysql: MySQL) -> str:
    """The RDS master secret; its value follows MariaDB if that was re-created meanwhile."""
    return _ensure_secret(secrets, MASTER_SECRET_NAME, mysql.secret(),
                          "Master credentials of the shared RDS (local MariaDB).")


def _ensure_rotation_master_secret(secrets: Any, mysql: MySQL) -> str:
    """The superuser secret the alternating-users rotation logs in with (`masterarn`): a
    full MySQL secret (engine, host, port, username, password), as the template reads it."""
    value = {"engine": "mysql", "host": mysql.host, "port": int(mysql.port), **mysql.secret()}
    return _ensure_secret(secrets, ROTATION_MASTER_SECRET_NAME, value,
                          "Superuser of the shared RDS for tenant secret rotation.")


def _ensure_secret(secrets: Any, name: str, wanted: Mapping[str, Any], description: str) -> str:
    """Secret `name` holding `wanted` (restored, or rewritten when it holds another value)."""
    value = json.dumps(dict(wanted))
    try:
        described = secrets.describe_secret(SecretId=name)
    except ClientError as error:
        if _error_code(error) != "ResourceNotFoundException":
            raise
        arn = str(
            secrets.create_secret(
                Name=name, Description=description, SecretString=value, Tags=_tags(),
            )["ARN"]
        )
        log.info("created secret %s", name)
        return arn
    if described.get("DeletedDate"):
        secrets.restore_secret(SecretId=name)
    current = secrets.get_secret_value(SecretId=name).get("SecretString")
    if current is None or json.loads(current) != json.loads(value):
        secrets.put_secret_value(SecretId=name, SecretString=value)
        log.info("updated secret %s", name)
    return str(described["ARN"])


def _ensure_boundary_policy(iam: Any) -> str:
    """The tenant boundary as a managed policy; a changed document becomes its new version."""
    document = json.loads(BOUNDARY_DOCUMENT.read_text())
    try:
        return str(iam.create_policy(
            PolicyName=BOUNDARY_POLICY,
            PolicyDocument=json.dumps(document),
            Description="Permissions boundary of every wpenv tenant role",
            Tags=_tags(),
        )["Policy"]["Arn"])
    except ClientError as error:
        if _error_code(error) != "EntityAlreadyExists":
            raise
    arn = next(
        str(p["Arn"])
        for page in iam.get_paginator("list_policies").paginate(Scope="Local")
        for p in page["Policies"]
        if p["PolicyName"] == BOUNDARY_POLICY
    )
    policy = iam.get_policy(PolicyArn=arn)["Policy"]
    stored = iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])
    if stored["PolicyVersion"]["Document"] != document:
        for version in iam.list_policy_versions(PolicyArn=arn)["Versions"]:
            if not version["IsDefaultVersion"]:  # room for the new one (at most five)
                iam.delete_policy_version(PolicyArn=arn, VersionId=version["VersionId"])
        iam.create_policy_version(
            PolicyArn=arn, PolicyDocument=json.dumps(document), SetAsDefault=True
        )
        log.info("updated policy %s", BOUNDARY_POLICY)
    return arn


def _function_zip() -> bytes:
    """A handler that does nothing: the platform runs the testSecret step itself."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("lambda_function.py", "def lambda_handler(event, context):\n    pass\n")
    return buffer.getvalue()


def _ensure_rotation_function(iam: Any, lam: Any) -> str:
    """The rotation function (and its role) that Terraform would deploy, as a stub."""
    try:
        return str(lam.get_function(FunctionName=ROTATION_FUNCTION)["Configuration"]["FunctionArn"])
    except ClientError as error:
        if _error_code(error) != "ResourceNotFoundException":
            raise
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
        "Action": "sts:AssumeRole"}]}
    try:
        role = iam.get_role(RoleName=ROTATION_FUNCTION)["Role"]["Arn"]
    except ClientError as error:
        if _error_code(error) != "NoSuchEntity":
            raise
        role = iam.create_role(RoleName=ROTATION_FUNCTION,
                               AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    arn = str(lam.create_function(
        FunctionName=ROTATION_FUNCTION, Runtime="python3.12", Role=role,
        Handler="lambda_function.lambda_handler", Code={"ZipFile": _function_zip()},
    )["FunctionArn"])
    log.info("created rotation function %s", arn)
    return arn


def bootstrap(session_or_clients: Any, mysql: Mapping[str, str]) -> dict[str, str]:
    """Create what Terraform owns in production, unless it exists; return the WPENV_* settings.

    ``session_or_clients`` is a boto3 Session or any ``service -> client`` callable (so the
    same code runs against the moto server and against moto's in-process mock). ``mysql``
    holds the MariaDB component's MYSQL_* variables; missing ones take the defaults in
    MYSQL_DEFAULTS, with a warning. WPENV_EFS_MOUNT_PATH is the caller's: it is local.
    """
    client: ClientFactory = getattr(session_or_clients, "client", session_or_clients)
    database = MySQL.from_env(mysql)
    if database.defaulted:
        log.warning("MariaDB variables missing, defaults used: %s", ", ".join(database.defaulted))
    ec2 = client("ec2")
    vpc_id = _ensure_vpc(ec2)
    subnet_ids = [
        _ensure_subnet(ec2, vpc_id, name, cidr, REGION + zone) for name, cidr, zone in SUBNETS
    ]
    alb_sg = _ensure_security_group(ec2, vpc_id, ALB_SG_NAME, "wpenv internal ALB", LISTENER_PORTS)
    efs_sg = _ensure_security_group(ec2, vpc_id, EFS_SG_NAME, "wpenv EFS mount targets", (2049,))
    cluster = _ensure_cluster(client("ecs"))
    fs_id = _ensure_file_system(client("efs"), subnet_ids, efs_sg)
    load_balancer_arns = ensure_load_balancer_pool(client, subnet_ids, alb_sg)
    bucket = _ensure_bucket(client("s3"))
    secret_arn = _ensure_master_secret(client("secretsmanager"), database)
    rotation_master_arn = _ensure_rotation_master_secret(client("secretsmanager"), database)
    boundary_arn = _ensure_boundary_policy(client("iam"))
    rotation_arn = _ensure_rotation_function(client("iam"), client("lambda"))
    return {
        "WPENV_REGION": REGION,
        "WPENV_CLUSTER_NAME": cluster,
        "WPENV_VPC_ID": vpc_id,
        "WPENV_PRIVATE_SUBNET_IDS": ",".join(subnet_ids),
        "WPENV_ALB_SECURITY_GROUP_ID": alb_sg,
        "WPENV_LOAD_BALANCER_ARNS": ",".join(load_balancer_arns),
        "WPENV_FILE_SYSTEM_ID": fs_id,
        "WPENV_ARCHIVE_BUCKET": bucket,
        "WPENV_DB_MASTER_SECRET_ARN": secret_arn,
        # The RDS endpoint, as Terraform outputs it: never read from the master secret.
        "WPENV_DB_HOST": database.host,
        "WPENV_DB_PORT": str(database.port),
        "WPENV_ROLE_PERMISSIONS_BOUNDARY_ARN": boundary_arn,
        "WPENV_DB_ROTATION_LAMBDA_ARN": rotation_arn,
        "WPENV_DB_ROTATION_MASTER_SECRET_ARN": rotation_master_arn,
    }
