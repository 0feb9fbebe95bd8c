"""ELBv2's listener rules in the fidelity layer: certificates and TLS security policies."""

from __future__ import annotations

from urllib.parse import urlencode

from tests.platform.fidelity import Request
from tests.platform.fidelity.elbv2 import listener_refusal, refuse, rewrite

CERT = "arn:aws:acm:us-east-1:123456789012:certificate/abc"
POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"


def _request(**params: str) -> Request:
    body = urlencode({"Action": "CreateListener", "Version": "2015-12-01", **params}).encode()
    return Request("", "CreateListener", "localhost", "/", body, {})


def test_https_needs_a_certificate_http_takes_none() -> None:
    refusal = listener_refusal({"Protocol": "HTTPS", "Port": "443"})
    assert refusal is not None and refusal.query
    assert (refusal.status, refusal.code, refusal.message) == (
        400, "ValidationError", "A certificate must be specified for HTTPS listeners"
    )
    refusal = listener_refusal({"Protocol": "HTTP", "Certificates.member.1.CertificateArn": CERT})
    assert refusal is not None
    assert refusal.message == "A certificate cannot be specified for HTTP listeners"
    assert listener_refusal({"Protocol": "HTTP", "Port": "80"}) is None


def test_security_policies_elbv2_does_not_have_are_refused() -> None:
    https = {"Protocol": "HTTPS", "Certificates.member.1.CertificateArn": CERT}
    assert listener_refusal({**https, "SslPolicy": POLICY}) is None
    assert listener_refusal(https) is None  # ELBv2 then picks its default policy
    refusal = listener_refusal({**https, "SslPolicy": "ELBSecurityPolicy-TLS13-9-9-2099-01"})
    assert refusal is not None and refusal.code == "SSLPolicyNotFound"


def test_refuse_looks_at_create_listener_only() -> None:
    assert refuse(_request(Protocol="HTTPS", Port="443")) is not None
    other = Request("", "ModifyListener", "localhost", "/", b"Action=ModifyListener", {})
    assert refuse(other) is None


def test_moto_certificate_code_becomes_elbv2_s() -> None:
    body = (b"<ErrorResponse><Error><Code>CertificateNotFoundException</Code>"
            b"<Message>Supplied certificate was not found</Message></Error></ErrorResponse>")
    fixed = rewrite(_request(Protocol="HTTPS"), "400 Bad Request", body)
    assert fixed is not None and b"<Code>CertificateNotFound</Code>" in fixed
    assert rewrite(_request(Protocol="HTTPS"), "400 Bad Request", b"<Code>Other</Code>") is None
