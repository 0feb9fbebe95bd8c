"""Elastic Load Balancing (v2) listeners as AWS answers them: certificates and TLS policies.

moto's CreateListener takes an HTTPS listener without a certificate and any SslPolicy name
(only its ModifyListener checks them), and names a missing certificate with its own code.
ELBv2 refuses, in the query protocol:
- an HTTPS listener without a certificate, and an HTTP one with a certificate: ValidationError
  "A certificate must be specified for HTTPS listeners" / "A certificate cannot be specified
  for HTTP listeners";
- a security policy name ELBv2 does not have: SSLPolicyNotFound (the names are those
  DescribeSSLPolicies lists, moto's copy of them);
- a certificate ARN that is neither in ACM nor in IAM: CertificateNotFound (moto answers
  CertificateNotFoundException, a code botocore does not map for elbv2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from moto.elbv2.ssl_policies import SSL_POLICIES

if TYPE_CHECKING:  # the package imports this module while it defines Refusal
    from tests.platform.fidelity import Refusal

CERTIFICATE_KEY = "Certificates.member.1.CertificateArn"
NEEDS_CERTIFICATE = "A certificate must be specified for HTTPS listeners"
NO_CERTIFICATE_ALLOWED = "A certificate cannot be specified for HTTP listeners"
NO_SUCH_POLICY = "Policy {name} not found"  # moto's own ModifyListener says the same
POLICIES: frozenset[str] = frozenset(SSL_POLICIES)
MOTO_CERTIFICATE_CODE = b"<Code>CertificateNotFoundException</Code>"
AWS_CERTIFICATE_CODE = b"<Code>CertificateNotFound</Code>"


def _form(body: bytes) -> dict[str, str]:
    """The query protocol's parameters (first value of each)."""
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {key: values[0] for key, values in parsed.items()}


def listener_refusal(params: dict[str, str]) -> Refusal | None:
    """What ELBv2 says about a CreateListener's protocol, certificate and policy; None if fine."""
    from tests.platform.fidelity import Refusal  # noqa: PLC0415 (see the import above)

    protocol = params.get("Protocol", "").upper()
    has_certificate = bool(params.get(CERTIFICATE_KEY))
    if protocol == "HTTPS" and not has_certificate:
        return Refusal(400, "ValidationError", NEEDS_CERTIFICATE, query=True)
    if protocol == "HTTP" and has_certificate:
        return Refusal(400, "ValidationError", NO_CERTIFICATE_ALLOWED, query=True)
    policy = params.get("SslPolicy")
    if policy is not None and policy not in POLICIES:
        return Refusal(400, "SSLPolicyNotFound", NO_SUCH_POLICY.format(name=policy), query=True)
    return None


def refuse(request: Any) -> Refusal | None:
    """Refuse CreateListener requests ELBv2 refuses."""
    if request.action != "CreateListener" or request.target:
        return None
    return listener_refusal(_form(request.body))


def wants(request: Any) -> bool:
    """CreateListener answers may carry moto's certificate code."""
    return bool(request.action == "CreateListener" and not request.target)


def rewrite(request: Any, status: str, body: bytes) -> bytes | None:
    """ELBv2's CertificateNotFound for moto's CertificateNotFoundException."""
    if not wants(request) or MOTO_CERTIFICATE_CODE not in body:
        return None
    return body.replace(MOTO_CERTIFICATE_CODE, AWS_CERTIFICATE_CODE)
