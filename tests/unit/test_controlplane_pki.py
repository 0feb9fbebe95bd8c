"""The control plane's PKI: what kube-apiserver and its clients rely on, checked offline.

A wrong SAN, a missing group or a broken chain only shows up as an opaque TLS or 403 error
from a running apiserver; these tests catch it without starting one.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from tests.platform.controlplane import Pki, ensure_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return ensure_pki(tmp_path_factory.mktemp("pki"))


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _verify_time() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def test_all_files_written_and_keys_private(pki: Pki) -> None:
    assert pki.complete()
    for key in (pki.ca_key, pki.serving_key, pki.admin_key, pki.sa_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key


def test_ca_is_a_ca(pki: Pki) -> None:
    ca = _cert(pki.ca_cert)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign


def test_serving_cert_chains_to_ca_for_loopback(pki: Pki) -> None:
    ca, serving = _cert(pki.ca_cert), _cert(pki.serving_cert)
    serving.verify_directly_issued_by(ca)
    verifier = (
        PolicyBuilder()
        .store(Store([ca]))
        .time(_verify_time())
        .build_server_verifier(x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")))
    )
    chain = verifier.verify(serving, [])
    assert chain[-1] == ca


def test_serving_cert_sans(pki: Pki) -> None:
    sans = _cert(pki.serving_cert).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    ips = sans.value.get_values_for_type(x509.IPAddress)
    dns = sans.value.get_values_for_type(x509.DNSName)
    assert ipaddress.IPv4Address("127.0.0.1") in ips
    assert ipaddress.IPv4Address("10.96.0.1") in ips  # the kubernetes Service ClusterIP
    assert {"localhost", "kubernetes.default.svc"} <= set(dns)


def test_admin_client_cert_is_cluster_admin(pki: Pki) -> None:
    ca, admin = _cert(pki.ca_cert), _cert(pki.admin_cert)
    # Signature check only: cryptography's client verifier insists on a SAN, which neither
    # Go nor OpenSSL need (the handshake test below covers real client-cert acceptance).
    admin.verify_directly_issued_by(ca)
    # kube-apiserver: CN -> user name, each O -> group; system:masters is cluster-admin.
    subject = admin.subject
    assert [a.value for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == ["wpenv-admin"]
    assert [a.value for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == [
        "system:masters"
    ]
    eku = admin.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku


def test_service_account_keys_are_an_rsa_pair(pki: Pki) -> None:
    private = serialization.load_pem_private_key(pki.sa_key.read_bytes(), password=None)
    public = serialization.load_pem_public_key(pki.sa_pub.read_bytes())
    assert isinstance(private, rsa.RSAPrivateKey)
    assert isinstance(public, rsa.RSAPublicKey)
    assert private.public_key().public_numbers() == public.public_numbers()


def test_tls_handshake_with_client_cert(pki: Pki) -> None:
    """OpenSSL, like Go, accepts the pair: server verified for 127.0.0.1, client cert too."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(pki.serving_cert, pki.serving_key)
    server_ctx.load_verify_locations(pki.ca_cert)
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    client_ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    client_ctx.load_cert_chain(pki.admin_cert, pki.admin_key)

    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname="127.0.0.1")
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(10):
        for name, end in (("client", client), ("server", server)):
            if not done[name]:
                try:
                    end.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            break
    assert all(done.values())
    peer = server.getpeercert()
    assert peer is not None
    assert (("commonName", "wpenv-admin"),) in peer["subject"]


def test_ensure_pki_reuses_a_complete_pki(pki: Pki) -> None:
    before = {p: p.read_bytes() for p in pki.files()}
    ensure_pki(pki.dir)
    assert {p: p.read_bytes() for p in pki.files()} == before


def test_ensure_pki_redoes_a_partial_pki(tmp_path: Path) -> None:
    first = ensure_pki(tmp_path)
    old_ca = first.ca_cert.read_bytes()
    first.admin_key.unlink()
    second = ensure_pki(tmp_path)
    assert second.complete()
    assert second.ca_cert.read_bytes() != old_ca
    _cert(second.admin_cert).verify_directly_issued_by(_cert(second.ca_cert))
