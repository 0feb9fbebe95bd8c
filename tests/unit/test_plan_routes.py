"""`plan.routes_overlap`: which two listener rules some request would match both of."""

from __future__ import annotations

import pytest

from wpenv.api.models import parse_spec
from wpenv.plan import Route, route_of, routes_overlap

OVERLAP = [
    (Route("", "/a"), Route("", "/a")),  # the same prefix
    (Route("shop.example.com", "/a"), Route("shop.example.com", "/a")),
    (Route("", "/a"), Route("", "/a/b")),  # /a/* holds /a/b
    (Route("", "/a/b/c"), Route("", "/a")),
    (Route("", "/a/"), Route("", "/a")),  # trailing slashes
    (Route("", "/a/b/"), Route("", "/a/")),
    (Route("", "/"), Route("", "/anything")),  # the root holds every path
    (Route("", ""), Route("", "/x")),
    (Route("Shop.Example.COM", "/a"), Route("shop.example.com", "/a")),  # hosts ignore case
    (Route("shop.example.com.", "/a"), Route("shop.example.com", "/a/b")),
    (Route("", "/a"), Route("shop.example.com", "/a")),  # no host: every host
]
APART = [
    (Route("", "/a"), Route("", "/ab")),  # a prefix of the text, not of the path
    (Route("", "/a-b"), Route("", "/a")),
    (Route("", "/a/b"), Route("", "/a/c")),
    (Route("shop.example.com", "/a"), Route("blog.example.com", "/a")),
    (Route("shop.example.com", "/"), Route("blog.example.com", "/a")),
    (Route("", "/A"), Route("", "/a")),  # path patterns are case sensitive
]


@pytest.mark.parametrize(("a", "b"), OVERLAP)
def test_overlapping_routes(a: Route, b: Route) -> None:
    assert routes_overlap(a, b) and routes_overlap(b, a)


@pytest.mark.parametrize(("a", "b"), APART)
def test_routes_apart(a: Route, b: Route) -> None:
    assert not routes_overlap(a, b) and not routes_overlap(b, a)


def test_the_route_of_a_spec_is_what_its_listener_rule_matches() -> None:
    assert route_of(parse_spec({"tenantId": "acme"})) == Route("", "/acme")
    spec = parse_spec({"tenantId": "acme",
                       "routing": {"host": "shop.example.com", "pathPrefix": "/shop"}})
    assert route_of(spec) == Route("shop.example.com", "/shop")
