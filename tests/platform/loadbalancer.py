"""The load balancers of the pool on loopback: each ALB in moto answers on its own address.

An ALB takes a request on one of its listeners, walks the listener's rules in priority
order, and performs the first matching rule's action (else the listener's default): it
forwards to a healthy registered target of a target group, answers a fixed response, or
redirects. Here, for every application load balancer moto holds:

- it gets one loopback address (``<network>.<n>``: the network is the platform's own, so
  platforms on other ports never share one), and each of its listeners is a server on that
  address and the listener's port; an HTTPS listener serves the certificate (and chain) its
  listener names in ACM, with the private key ACM keeps, TLS 1.2 and newer;
- every request is routed by the listener's rules as they stand in moto at that moment
  ("Condition types for listener rules"): ``host-header`` (case-insensitive, port left
  out) and ``path-pattern`` (case-sensitive, the path without the query), both with ``*``
  (any run of characters) and ``?`` (one character), values of one condition OR-ed,
  conditions AND-ed; a rule with a condition this does not know never matches;
- ``forward`` sends the request, path and Host unchanged, with X-Forwarded-For, -Proto and
  -Port, round-robin to the targets registered in the target group whose task the data
  plane reports healthy (its own health checks, wordpress.py; not moto's
  DescribeTargetHealth, which calls every target healthy). None healthy: 503, as an ALB
  answers a target group without healthy targets here (AWS would fail open to the
  unhealthy ones; the platform is stricter on purpose). A target that does not answer:
  502; one too slow: 504;
- ``fixed-response`` and ``redirect`` (``#{protocol}``, ``#{host}``, ``#{port}``,
  ``#{path}``, ``#{query}``) answer as the action's configuration says.

A poller keeps the servers in line with moto (a listener made later gets its server, one
deleted loses it). ``GET /wpenv/load-balancers`` says where each load balancer answers;
``aws.up`` turns that into WPENV_ALB_RESOLVE. Binding a port below 1024 needs root (or
CAP_NET_BIND_SERVICE); a listener that cannot bind is reported with its error.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import itertools
import json
import logging
import re
import ssl
import threading
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from moto.backends import get_backend

from tests.platform import pki

__all__ = ["LOAD_BALANCERS_PATH", "NETWORK_ENV", "LoadBalancers", "matches_host",
           "matches_path", "network_for", "read_load_balancers", "redirect_location",
           "resolve_entries", "rule_matches"]

log = logging.getLogger("wpenv.loadbalancer")

LOAD_BALANCERS_PATH = "/wpenv/load-balancers"
NETWORK_ENV = "WPENV_ALB_NETWORK"  # the first three octets of the load balancers' addresses
POLL_SECONDS = 0.5
TARGET_TIMEOUT = 60.0  # the ALB's default idle timeout
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
    "trailer", "transfer-encoding", "upgrade", "content-length",
})
DEFAULT_PORTS = {"HTTP": 80, "HTTPS": 443}

# (ip, port, target group ARN) -> loopback addresses of healthy tasks behind that target.
Healthy = Callable[[str], Mapping[tuple[str, int], list[str]]]


def network_for(port: int) -> str:
    """A loopback /24 of the platform's own, from its moto port: ``127.<hi>.<lo>``."""
    return f"127.{(port >> 8) & 255}.{port & 255}"


# --- matching (pure) -------------------------------------------------------------------


def _pattern(value: str, flags: int) -> re.Pattern[str]:
    """An ALB wildcard pattern as a regular expression: `*` any run, `?` one character."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in value)
    return re.compile(body + r"\Z", flags | re.DOTALL)


def matches_host(values: Iterable[str], host: str) -> bool:
    """Whether the Host (port left out) matches one of the values, case-insensitively."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return any(_pattern(v, re.IGNORECASE).match(name) for v in values)


def matches_path(values: Iterable[str], path: str) -> bool:
    """Whether the path (no query) matches one of the values; case matters."""
    return any(_pattern(v, 0).match(path) for v in values)


def _values(condition: Mapping[str, Any]) -> list[str]:
    """The condition's values, from `Values` and its `*Config` form (both may be given)."""
    values = list(condition.get("Values") or [])
    for key, config in condition.items():
        if key.endswith("Config") and isinstance(config, dict):
            values += list(config.get("Values") or [])
    return values


def rule_matches(conditions: Iterable[Mapping[str, Any]], host: str, path: str) -> bool:
    """Every condition holds (an unknown condition type never does)."""
    for condition in conditions:
        kind = condition.get("Field")
        if kind == "host-header":
            ok = matches_host(_values(condition), host)
        elif kind == "path-pattern":
            ok = matches_path(_values(condition), path)
        else:
            ok = False
        if not ok:
            return False
    return True


def redirect_location(config: Mapping[str, Any], protocol: str, host: str, port: int,
                      path: str, query: str) -> str:
    """The Location of a redirect action (defaults keep what the request had)."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    keys = {"#{protocol}": protocol.lower(), "#{host}": name, "#{port}": str(port),
            "#{path}": path.lstrip("/"), "#{query}": query}

    def fill(value: str) -> str:
        for key, replacement in keys.items():
            value = value.replace(key, replacement)
        return value

    scheme = fill(str(config.get("Protocol") or "#{protocol}")).lower()
    to_port = fill(str(config.get("Port") or "#{port}"))
    shown = "" if DEFAULT_PORTS.get(scheme.upper()) == int(to_port) else f":{to_port}"
    location = f"{scheme}://{fill(str(config.get('Host') or '#{host}'))}{shown}"
    location += fill(str(config.get("Path") or "/#{path}"))
    rest = fill(str(config.get("Query") or "#{query}"))
    return location + (f"?{rest}" if rest else "")


# --- what moto holds -------------------------------------------------------------------


def _elbv2() -> list[Any]:
    """moto's ELBv2 region backends that exist now."""
    found = []
    backends = get_backend("elbv2")
    for account in list(backends.keys()):
        for region in list(backends[account].keys()):
            found.append(backends[account][region])
    return found


def _rules(listener: Any) -> list[Any]:
    """The listener's rules in evaluation order: by priority, the default last."""
    rules = list(listener.rules.values())
    ordered = sorted((r for r in rules if r.priority != "default"), key=lambda r: int(r.priority))
    return ordered + [r for r in rules if r.priority == "default"]


def _forward_groups(action: Mapping[str, Any]) -> list[str]:
    """The target group ARNs of a forward action (both of its forms)."""
    groups = [str(action["TargetGroupArn"])] if action.get("TargetGroupArn") else []
    config = action.get("ForwardConfig") or {}
    groups += [str(g["TargetGroupArn"]) for g in config.get("TargetGroups") or []
               if g.get("TargetGroupArn")]
    return groups


def _certificate(listener: Any, region_backend: Any) -> tuple[bytes, bytes] | None:
    """(certificate + chain, private key) in PEM of an HTTPS listener, from moto's ACM."""
    arn = listener.certificate or next(iter(listener.certificates or []), None)
    if not arn:
        return None
    acm = get_backend("acm")[region_backend.account_id][region_backend.region_name]
    bundle = acm.get_certificate(str(arn))
    chain = bundle.chain or b""
    return bundle.cert.rstrip(b"\n") + b"\n" + chain, bundle.key


# --- one listener ------------------------------------------------------------------------


@dataclass
class Listener:
    """A server on (address, port) answering for one moto listener."""

    arn: str
    protocol: str
    address: str
    port: int
    server: http.server.ThreadingHTTPServer | None = None
    error: str = ""

    def view(self) -> dict[str, Any]:
        """What ``GET /wpenv/load-balancers`` shows of it."""
        return {"port": self.port, "protocol": self.protocol, "bound": self.server is not None,
                "error": self.error}


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], balancers: LoadBalancers, listener: Listener,
                 tls: ssl.SSLContext | None) -> None:
        self.balancers, self.listener, self.tls = balancers, listener, tls
        super().__init__(address, _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        """The TLS handshake happens here, in the connection's own thread."""
        if self.tls is not None:
            request.settimeout(TARGET_TIMEOUT)
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.server.listener.address, *args)

    def _any(self) -> None:
        self.server.balancers.handle(self.server.listener, self)

    # http.server calls do_<METHOD>; every method is routed the same way.
    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _any  # noqa: N815


SERVER = "awselb/2.0"  # what an ALB names itself in the answers it makes


def _answer(handler: _Handler, status: int, headers: list[tuple[str, str]], body: bytes,
            own: bool = True) -> None:
    """Send one response; the ALB's own answers carry its Server and Date, a target's
    answer keeps the target's."""
    handler.send_response_only(status)
    if own:
        headers = [("Server", SERVER), ("Date", handler.date_time_string()), *headers]
    for name, value in headers:
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)


def _error_page(handler: _Handler, status: int) -> None:
    """The ALB's own answer for 502, 503 and 504: a small HTML page."""
    reason = http.HTTPStatus(status).phrase
    body = (f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
            f"<center><h1>{status} {reason}</h1></center>\r\n</body>\r\n</html>\r\n").encode()
    _answer(handler, status, [("Content-Type", "text/html")], body)


# --- the pool ---------------------------------------------------------------------------


@dataclass
class Balancer:
    """One ALB of moto on its loopback address."""

    arn: str
    name: str
    dns_name: str
    address: str
    listeners: dict[str, Listener] = field(default_factory=dict)

    def view(self) -> dict[str, Any]:
        return {"name": self.name, "arn": self.arn, "dnsName": self.dns_name,
                "address": self.address,
                "listeners": [x.view() for x in self.listeners.values()]}


class LoadBalancers:
    """Every application load balancer in moto, served on loopback; see the module docstring."""

    def __init__(self, network: str, state: Path, healthy: Healthy) -> None:
        self.network = network
        self.state = state
        self.healthy = healthy
        self.lock = threading.Lock()
        self.balancers: dict[str, Balancer] = {}
        self.next_host = itertools.count(1)
        self.turns: dict[str, itertools.count[int]] = {}  # round-robin per target group

    # -- keeping servers in line with moto -------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Poll moto until ``stop``; then close every server."""
        while not stop.wait(POLL_SECONDS):
            try:
                self.sync()
            except Exception:  # a moto structure changing under us: next round
                log.exception("load balancer sync")
        self.close()

    def sync(self) -> None:
        """A server per listener of every application load balancer; none for the gone."""
        seen: set[str] = set()
        for backend in _elbv2():
            for lb in list(backend.load_balancers.values()):
                if getattr(lb, "loadbalancer_type", "application") != "application":
                    continue
                seen.add(lb.arn)
                balancer = self.balancers.get(lb.arn)
                if balancer is None:
                    address = f"{self.network}.{next(self.next_host)}"
                    balancer = Balancer(lb.arn, lb.name, lb.dns_name, address)
                    with self.lock:
                        self.balancers[lb.arn] = balancer
                self._sync_listeners(balancer, list(lb.listeners.values()), backend)
        for arn in [a for a in self.balancers if a not in seen]:
            with self.lock:
                gone = self.balancers.pop(arn)
            for listener in gone.listeners.values():
                _close(listener)

    def _sync_listeners(self, balancer: Balancer, listeners: list[Any], backend: Any) -> None:
        wanted = {str(x.arn): x for x in listeners}
        for arn in [a for a in balancer.listeners if a not in wanted]:
            _close(balancer.listeners.pop(arn))
        for arn, found in wanted.items():
            if arn in balancer.listeners:
                continue
            listener = Listener(arn, str(found.protocol), balancer.address, int(found.port))
            try:
                tls = self._tls(balancer, found, backend) if listener.protocol == "HTTPS" else None
                server = _Server((balancer.address, listener.port), self, listener, tls)
            except (OSError, ssl.SSLError, LookupError) as exc:
                listener.error = f"{type(exc).__name__}: {exc}"
                log.warning("%s:%d not served: %s", balancer.address, listener.port, exc)
            else:
                listener.server = server
                threading.Thread(target=server.serve_forever, daemon=True,
                                 name=f"alb-{balancer.name}-{listener.port}").start()
                log.info("%s (%s) listener %s:%d", balancer.name, listener.protocol,
                         balancer.address, listener.port)
            balancer.listeners[arn] = listener

    def _tls(self, balancer: Balancer, listener: Any, backend: Any) -> ssl.SSLContext:
        pem = _certificate(listener, backend)
        if pem is None:
            raise LookupError("the HTTPS listener names no certificate")
        home = self.state / "load-balancers"
        home.mkdir(parents=True, exist_ok=True)
        chain, key = home / f"{balancer.name}-{listener.port}.pem", home / f"{balancer.name}.key"
        pki.write_file(chain, pem[0], secret=False)
        pki.write_file(key, pem[1], secret=True)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(chain, key)
        return context

    def close(self) -> None:
        """Stop every server (the platform is going away)."""
        with self.lock:
            balancers = list(self.balancers.values())
        for balancer in balancers:
            for listener in balancer.listeners.values():
                _close(listener)

    def views(self) -> list[dict[str, Any]]:
        """Where every load balancer answers, for ``GET /wpenv/load-balancers``."""
        with self.lock:
            return [b.view() for b in self.balancers.values()]

    # -- one request -----------------------------------------------------------------------

    def handle(self, listener: Listener, handler: _Handler) -> None:
        """Route one request by the listener's rules as moto holds them now."""
        host = handler.headers.get("Host", "")
        path, _, query = handler.path.partition("?")
        action = self._action(listener.arn, host, path)
        kind = (action or {}).get("Type")
        if kind == "forward":
            self._forward(listener, handler, _forward_groups(action or {}))
        elif kind == "fixed-response":
            config = (action or {}).get("FixedResponseConfig") or {}
            body = str(config.get("MessageBody") or "").encode()
            headers = [("Content-Type", str(config.get("ContentType") or "text/plain"))]
            _answer(handler, int(config.get("StatusCode") or 200), headers, body)
        elif kind == "redirect":
            config = (action or {}).get("RedirectConfig") or {}
            location = redirect_location(config, listener.protocol, host, listener.port,
                                         path, query)
            status = 302 if config.get("StatusCode") == "HTTP_302" else 301
            _answer(handler, status, [("Location", location)], b"")
        else:  # the listener went away under the request
            _error_page(handler, 503)

    def _action(self, listener_arn: str, host: str, path: str) -> dict[str, Any] | None:
        for backend in _elbv2():
            listener = _find_listener(backend, listener_arn)
            if listener is None:
                continue
            for rule in _rules(listener):
                if rule.priority == "default" or rule_matches(rule.conditions, host, path):
                    actions = sorted((a.data for a in rule.actions),
                                     key=lambda a: int(a.get("Order") or 0))
                    return dict(actions[-1]) if actions else None
        return None

    def _target(self, groups: list[str]) -> str | None:
        """The next healthy target's loopback address, round-robin per target group."""
        for arn in groups:
            addresses = sorted(a for found in self._registered(arn) for a in found)
            if addresses:
                turn = next(self.turns.setdefault(arn, itertools.count()))
                return addresses[turn % len(addresses)]
        return None

    def _registered(self, arn: str) -> list[list[str]]:
        healthy = self.healthy(arn)
        for backend in _elbv2():
            group = backend.target_groups.get(arn)
            if group is not None:
                return [healthy.get((str(t["Id"]), int(t["Port"])), [])
                        for t in list(group.targets.values())]
        return []

    def _forward(self, listener: Listener, handler: _Handler, groups: list[str]) -> None:
        target = self._target(groups)
        if target is None:
            _error_page(handler, 503)
            return
        host, _, port = target.rpartition(":")
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in HOP_BY_HOP}
        client = handler.client_address[0]
        forwarded = handler.headers.get("X-Forwarded-For")
        headers["X-Forwarded-For"] = f"{forwarded}, {client}" if forwarded else client
        headers["X-Forwarded-Proto"] = listener.protocol.lower()
        headers["X-Forwarded-Port"] = str(listener.port)
        connection = http.client.HTTPConnection(host, int(port), timeout=TARGET_TIMEOUT)
        try:
            connection.request(handler.command, handler.path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
        except TimeoutError:
            _error_page(handler, 504)
            return
        except (OSError, http.client.HTTPException):
            _error_page(handler, 502)
            return
        finally:
            connection.close()
        kept = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
        _answer(handler, response.status, kept, payload, own=False)

    def wsgi(self, app: WSGIApplication) -> WSGIApplication:
        """Answer ``GET /wpenv/load-balancers``; everything else goes to ``app``."""

        def handler(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            if environ.get("PATH_INFO") != LOAD_BALANCERS_PATH:
                return app(environ, start_response)
            body = json.dumps({"loadBalancers": self.views()}).encode()
            start_response("200 OK", [("Content-Type", "application/json"),
                                      ("Content-Length", str(len(body)))])
            return [body]

        return handler


def _find_listener(backend: Any, arn: str) -> Any:
    for lb in list(backend.load_balancers.values()):
        found = lb.listeners.get(arn)
        if found is not None:
            return found
    return None


def _close(listener: Listener) -> None:
    if listener.server is not None:
        with contextlib.suppress(OSError):
            listener.server.shutdown()
            listener.server.server_close()
        listener.server = None


# --- clients (aws.up, tests, demo) -------------------------------------------------------


def read_load_balancers(endpoint: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Where each load balancer answers (GET /wpenv/load-balancers)."""
    with urllib.request.urlopen(endpoint + LOAD_BALANCERS_PATH, timeout=timeout) as response:
        document = json.loads(response.read())
    found: list[dict[str, Any]] = document["loadBalancers"]
    return found


def resolve_entries(balancers: Iterable[Mapping[str, Any]]) -> list[str]:
    """``host:port:address`` per bound listener, as curl's --resolve takes them."""
    return [f"{b['dnsName']}:{x['port']}:{b['address']}" for b in balancers
            for x in b["listeners"] if x["bound"]]

