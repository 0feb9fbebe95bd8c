"""An HTTP client for the tenants' sites, as a browser on this machine reaches them.

It does what `curl --cacert "$WPENV_CA_BUNDLE" --resolve <WPENV_ALB_RESOLVE entries>` does:
the URL's host name stays the load balancer's DNS name (SNI, certificate check, Host
header), but the connection goes to the loopback address WPENV_ALB_RESOLVE maps that name
and port to. Cookies are kept per client (one client, one browser), redirects are
followed unless asked not to. For the end-to-end tests and `make demo`.
"""

from __future__ import annotations

import html
import http.client
import http.cookiejar
import re
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = ["Answer", "SiteClient", "parse_resolve", "title_of"]

Resolve = dict[tuple[str, int], str]
_TITLE = re.compile(r"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def parse_resolve(entries: str) -> Resolve:
    """`host:port:address ...` (WPENV_ALB_RESOLVE) as {(host, port): address}."""
    found: Resolve = {}
    for entry in entries.split():
        host, port, address = entry.split(":", 2)
        found[(host.lower(), int(port))] = address
    return found


def title_of(page: str) -> str:
    """The text of the page's <title>, unescaped ("" without one)."""
    found = _TITLE.search(page)
    return html.unescape(found.group(1)).strip() if found else ""


def _address(resolve: Resolve, host: str, port: int) -> str:
    return resolve.get((host.lower(), port), host)


class _HTTP(http.client.HTTPConnection):
    resolve: ClassVar[Resolve] = {}  # set per client (a subclass each)

    def connect(self) -> None:
        self.sock = socket.create_connection(
            (_address(self.resolve, self.host, self.port), self.port), self.timeout)


class _HTTPS(http.client.HTTPSConnection):
    resolve: ClassVar[Resolve] = {}  # set per client (a subclass each)
    tls: ClassVar[ssl.SSLContext]

    def connect(self) -> None:
        raw = socket.create_connection(
            (_address(self.resolve, self.host, self.port), self.port), self.timeout)
        self.sock = self.tls.wrap_socket(raw, server_hostname=self.host)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass(frozen=True)
class Answer:
    """One response: status, final URL, headers, body as text."""

    status: int
    url: str
    headers: Mapping[str, str]
    body: str

    @property
    def title(self) -> str:
        """The page's title."""
        return title_of(self.body)


class SiteClient:
    """One browser: its own cookies, the platform's CA, the load balancers' addresses."""

    def __init__(self, env: Mapping[str, str], timeout: float = 30.0) -> None:
        resolve = parse_resolve(env.get("WPENV_ALB_RESOLVE", ""))
        tls = ssl.create_default_context(cafile=env["WPENV_CA_BUNDLE"])
        self.timeout = timeout
        self.cookies = http.cookiejar.CookieJar()

        class Plain(_HTTP):
            pass

        class Secure(_HTTPS):
            pass

        Plain.resolve = Secure.resolve = resolve
        Secure.tls = tls

        class Handler(urllib.request.HTTPHandler, urllib.request.HTTPSHandler):
            def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
                return self.do_open(Plain, req)

            def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
                return self.do_open(Secure, req)

        jar = urllib.request.HTTPCookieProcessor(self.cookies)
        self.following = urllib.request.build_opener(Handler(), jar)
        self.staying = urllib.request.build_opener(Handler(), jar, _NoRedirect())

    def get(self, url: str, follow: bool = True) -> Answer:
        """GET ``url``."""
        return self.request(url, follow=follow)

    def post(self, url: str, form: Mapping[str, str], follow: bool = True,
             headers: Mapping[str, str] | None = None) -> Answer:
        """POST ``form`` (urlencoded) to ``url``."""
        return self.request(url, urllib.parse.urlencode(form).encode(), follow, headers)

    def request(self, url: str, data: bytes | None = None, follow: bool = True,
                headers: Mapping[str, str] | None = None) -> Answer:
        """One request; an HTTP error status is an answer, not an exception."""
        opener = self.following if follow else self.staying
        request = urllib.request.Request(url, data=data, headers=dict(headers or {}))
        try:
            with opener.open(request, timeout=self.timeout) as response:
                return Answer(int(response.status), str(response.url),
                              dict(response.headers.items()),
                              response.read().decode(errors="replace"))
        except urllib.error.HTTPError as exc:
            return Answer(int(exc.code), url, dict(exc.headers.items()),
                          exc.read().decode(errors="replace"))
