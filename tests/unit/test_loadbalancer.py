"""The load balancers on loopback (tests/platform/loadbalancer.py): matching and redirects.

ALB's rule semantics ("Condition types for listener rules"): host names compare
case-insensitively and without the port, paths case-sensitively and without the query;
`*` is any run of characters, `?` exactly one; a condition's values are OR-ed, a rule's
conditions AND-ed.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.platform.loadbalancer import (
    matches_host,
    matches_path,
    network_for,
    redirect_location,
    resolve_entries,
    rule_matches,
)


@pytest.mark.parametrize(
    ("values", "host", "expected"),
    [
        (["wp.example.com"], "WP.Example.COM", True),
        (["wp.example.com"], "wp.example.com:443", True),
        (["*.example.com"], "a.b.example.com", True),
        (["*.example.com"], "example.com", False),
        (["w?.example.com"], "wp.example.com", True),
        (["w?.example.com"], "wpp.example.com", False),
        (["a.example.com", "b.example.com"], "b.example.com", True),
        (["wp.example.com"], "wp.example.com.evil", False),
    ],
)
def test_host_header_matching(values: list[str], host: str, expected: bool) -> None:
    assert matches_host(values, host) is expected


@pytest.mark.parametrize(
    ("values", "path", "expected"),
    [
        (["/acme", "/acme/*"], "/acme", True),
        (["/acme", "/acme/*"], "/acme/", True),
        (["/acme", "/acme/*"], "/acme/wp-login.php", True),
        (["/acme", "/acme/*"], "/Acme/wp-login.php", False),  # paths are case-sensitive
        (["/acme", "/acme/*"], "/acmeco/", False),
        (["/a?c"], "/abc", True),
        (["/a?c"], "/ac", False),
        (["/a.c"], "/abc", False),  # no regular expression: `.` is a dot
    ],
)
def test_path_pattern_matching(values: list[str], path: str, expected: bool) -> None:
    assert matches_path(values, path) is expected


def test_conditions_are_anded_and_read_in_both_forms() -> None:
    conditions: list[dict[str, Any]] = [
        {"Field": "path-pattern", "PathPatternConfig": {"Values": ["/acme/*"]}},
        {"Field": "host-header", "Values": ["wp.example.com"]},
    ]
    assert rule_matches(conditions, "wp.example.com", "/acme/x")
    assert not rule_matches(conditions, "other.example.com", "/acme/x")
    assert not rule_matches(conditions, "wp.example.com", "/other")
    assert not rule_matches([{"Field": "source-ip", "Values": ["0.0.0.0/0"]}], "h", "/")
    assert rule_matches([], "any", "/any")


def test_redirect_keeps_host_path_and_query_by_default() -> None:
    config = {"Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"}
    location = redirect_location(config, "HTTP", "lb.example:80", 80, "/acme/x", "a=1")
    assert location == "https://lb.example/acme/x?a=1"
    assert redirect_location(config, "HTTP", "lb.example", 80, "/", "") == "https://lb.example/"
    moved = {"Protocol": "#{protocol}", "Port": "8443", "Host": "new.#{host}",
             "Path": "/new/#{path}", "Query": "#{query}&b=2"}
    assert redirect_location(moved, "HTTPS", "lb.example", 443, "/p", "a=1") == (
        "https://new.lb.example:8443/new/p?a=1&b=2")


def test_addresses_and_resolve_entries() -> None:
    assert network_for(26000) == "127.101.144"
    balancers = [{"dnsName": "lb-1.elb", "address": "127.1.2.1", "listeners": [
        {"port": 443, "bound": True}, {"port": 80, "bound": False}]}]
    assert resolve_entries(balancers) == ["lb-1.elb:443:127.1.2.1"]
