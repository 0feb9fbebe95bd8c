"""The tenant's URL: the scheme follows the listener's protocol, default ports are left out."""

from __future__ import annotations

from wpenv.api.models import parse_spec
from wpenv.plan import url_for
from wpenv.settings import Settings

SETTINGS = Settings(alb_dns_name="internal-wpenv.elb.example", listener_arns=[])


def test_https_listeners_give_https_urls() -> None:
    spec = parse_spec({"tenantId": "acme"})
    assert url_for(spec, SETTINGS, 443, "HTTPS") == "https://internal-wpenv.elb.example/acme/"
    assert url_for(spec, SETTINGS, 8443, "HTTPS") == (
        "https://internal-wpenv.elb.example:8443/acme/"
    )


def test_http_listeners_and_unknown_ones_give_http() -> None:
    spec = parse_spec({"tenantId": "acme", "routing": {"host": "acme.example.com"}})
    assert url_for(spec, SETTINGS, 80, "HTTP") == "http://acme.example.com/acme/"
    assert url_for(spec, SETTINGS, 443, "HTTP") == "http://acme.example.com:443/acme/"
    assert url_for(spec, SETTINGS, None) == "http://acme.example.com/acme/"
