"""The tenant's URL: the placed load balancer's name, the listener's scheme and port."""

from __future__ import annotations

from wpenv.api.models import parse_spec
from wpenv.plan import Endpoint, url_for

DNS = "internal-wpenv-1.elb.example"


def test_https_listeners_give_https_urls() -> None:
    spec = parse_spec({"tenantId": "acme"})
    assert url_for(spec, Endpoint(DNS, 443, "HTTPS")) == f"https://{DNS}/acme/"
    assert url_for(spec, Endpoint(DNS, 8443, "HTTPS")) == f"https://{DNS}:8443/acme/"
    other = Endpoint("internal-wpenv-2.elb.example", 443, "HTTPS")
    assert url_for(spec, other) == "https://internal-wpenv-2.elb.example/acme/"


def test_http_listeners_and_unknown_ones_give_http() -> None:
    spec = parse_spec({"tenantId": "acme", "routing": {"host": "acme.example.com"}})
    assert url_for(spec, Endpoint(DNS, 80, "HTTP")) == "http://acme.example.com/acme/"
    assert url_for(spec, Endpoint(DNS, 443, "HTTP")) == "http://acme.example.com:443/acme/"
    assert url_for(spec, None) == "http://acme.example.com/acme/"
    assert url_for(parse_spec({"tenantId": "acme"}), None) == "http://alb.local/acme/"
