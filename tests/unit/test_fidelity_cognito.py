"""Cognito's rules in the fidelity layer: redirect URLs and hosted-domain prefixes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.platform.fidelity import Request
from tests.platform.fidelity.cognito import domain_refusal, refuse, url_refusal

SERVICE = "AWSCognitoIdentityProviderService."


def _request(operation: str, body: dict[str, Any]) -> Request:
    return Request(SERVICE + operation, operation, "localhost", "/", json.dumps(body).encode(), {})


@pytest.mark.parametrize("url", [
    "https://alb.example.internal/acme/",
    "https://alb.example.internal:8443/acme/wp-admin/admin-ajax.php?action=x",
    "http://localhost/cb",
    "http://localhost:3000/cb",
    "http://127.0.0.1:8080/",
    "http://[::1]:8080/",
    "myapp://example",
])
def test_cognito_takes_https_loopback_http_and_app_urls(url: str) -> None:
    assert url_refusal({"CallbackURLs": [url], "LogoutURLs": [url]}) is None


@pytest.mark.parametrize("url", [
    "http://alb.example.internal/acme/",
    "http://localhost.com/",
    "http://10.0.0.1/",
    "HTTP://alb.example.internal/",
])
def test_plain_http_elsewhere_is_refused_in_callbacks_and_logouts(url: str) -> None:
    for field in ("CallbackURLs", "LogoutURLs"):
        refusal = url_refusal({field: ["https://ok.example.com/", url]})
        assert refusal is not None
        assert (refusal.status, refusal.code) == (400, "InvalidParameterException")
        assert refusal.message == f"{url} cannot use the HTTP protocol."


def test_url_count_and_length_limits() -> None:
    many = [f"https://h{i}.example.com/" for i in range(101)]
    refusal = url_refusal({"CallbackURLs": many})
    assert refusal is not None and "at 'callbackURLs'" in refusal.message
    assert "less than or equal to 100" in refusal.message
    assert url_refusal({"LogoutURLs": many[:100]}) is None
    long = "https://example.com/" + "a" * 1005
    refusal = url_refusal({"LogoutURLs": [long]})
    assert refusal is not None and "at 'logoutURLs'" in refusal.message
    assert url_refusal({"LogoutURLs": [long[:1024]]}) is None


@pytest.mark.parametrize(("domain", "word"), [
    ("aws", "aws"), ("wpenv-my-aws-shop-1a2b", "aws"), ("my-amazon-shop", "amazon"),
    ("cognito32charsxxxxxxxxxxxxxxxxxx", "cognito"), ("amazoncognito", "amazon"),
])
def test_reserved_words_are_refused_anywhere_in_a_prefix(domain: str, word: str) -> None:
    refusal = domain_refusal(domain)
    assert refusal is not None
    assert (refusal.code, refusal.message) == (
        "InvalidParameterException", f"Domain cannot contain reserved word: {word}"
    )


@pytest.mark.parametrize("domain", ["", "Acme", "acme_shop", "-acme", "acme-", "a.b", "é"])
def test_prefixes_outside_the_pattern_are_refused(domain: str) -> None:
    refusal = domain_refusal(domain)
    assert refusal is not None and refusal.code == "InvalidParameterException"
    assert refusal.message.startswith("The domain name contains an invalid character.")


def test_prefix_length() -> None:
    assert domain_refusal("a" * 63) is None
    refusal = domain_refusal("a" * 64)
    assert refusal is not None and "less than or equal to 63" in refusal.message


def test_refuse_reads_the_operations_it_knows_only() -> None:
    bad = {"UserPoolId": "p", "ClientName": "c", "CallbackURLs": ["http://x.example.com/"]}
    assert refuse(_request("CreateUserPoolClient", bad)) is not None
    assert refuse(_request("UpdateUserPoolClient", {**bad, "ClientId": "i"})) is not None
    assert refuse(_request("DescribeUserPoolClient", bad)) is None
    assert refuse(_request("CreateUserPoolDomain", {"Domain": "aws-x", "UserPoolId": "p"}))
    custom = {"Domain": "auth.example.com", "UserPoolId": "p",
              "CustomDomainConfig": {"CertificateArn": "arn:aws:acm:us-east-1:1:certificate/x"}}
    assert refuse(_request("CreateUserPoolDomain", custom)) is None
    assert refuse(_request("CreateUserPoolDomain", {"Domain": "wpenv-acme-0a1b2c3d"})) is None
