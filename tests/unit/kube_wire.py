"""Real Kubernetes client errors, from a real client talking to a port that refuses or to
a tiny HTTP server that answers one status: what wpenv.kube sees when the API server is
down, restarting or the object is gone. Nothing of the client is replaced."""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
from collections.abc import Iterator

import kubernetes

from wpenv.api.models import GROUP, PLURAL, VERSION


def _api(port: int) -> kubernetes.client.CustomObjectsApi:
    config = kubernetes.client.Configuration(host=f"http://127.0.0.1:{port}")
    config.retries = 0  # urllib3 would otherwise try three more times
    return kubernetes.client.CustomObjectsApi(kubernetes.client.ApiClient(config))


def free_port() -> int:
    """A port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def error_of(port: int) -> Exception:
    """What a status patch through the client raises against `port`."""
    try:
        _api(port).patch_namespaced_custom_object_status(
            GROUP, VERSION, "ns", PLURAL, "acme", {"status": {}})
    except Exception as exc:
        return exc
    raise AssertionError("the patch succeeded")


def refused() -> Exception:
    """The client's error when the API server is not listening (connection refused)."""
    return error_of(free_port())


@contextlib.contextmanager
def answering(status: int) -> Iterator[int]:
    """A server that answers every request with `status` and a Status body; its port."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            body = b'{"kind":"Status","apiVersion":"v1","status":"Failure"}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_PATCH = _answer  # noqa: N815

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def answered(status: int) -> Exception:
    """The client's error when the API server answers `status`."""
    with answering(status) as port:
        return error_of(port)
