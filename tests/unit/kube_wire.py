"""Real Kubernetes client errors, from the operator's client (wpenv.kube.Api) talking to a
port that refuses or to a tiny HTTP server that answers one status: what wpenv.kube sees
when the API server is down, restarting or the object is gone. Nothing is replaced."""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
from collections.abc import Iterator

import kopf

from wpenv import kube


def api(port: int) -> kube.Api:
    """The client on a plain-HTTP server at `port`, never retrying a refused connection."""
    return kube.Api(kopf.ConnectionInfo(server=f"http://127.0.0.1:{port}", token="t0k"),
                    retries=0)


def free_port() -> int:
    """A port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def error_of(port: int) -> Exception:
    """What a status patch through the client raises against `port`."""
    try:
        api(port).request("PATCH", kube.environments("ns", "acme", "status"),
                          body={"status": {}}, content_type=kube.MERGE_PATCH)
    except Exception as exc:
        return exc
    raise AssertionError("the patch succeeded")


def refused() -> Exception:
    """The client's error when the API server is not listening (connection refused)."""
    return error_of(free_port())


STATUS = (b'{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Tested",'
          b'"message":"as the test asked"}')
SEEN: list[tuple[str, str, str, bytes]] = []  # method, path, authorization, body


@contextlib.contextmanager
def answering(status: int, *then: int) -> Iterator[int]:
    """A server that answers with `status` and a Status body (then with each of `then`
    in turn, the last one for good); its port."""
    statuses = [status, *then]

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            SEEN.append((self.command, self.path, self.headers.get("Authorization", ""),
                         self.rfile.read(length)))
            code = statuses.pop(0) if len(statuses) > 1 else statuses[0]
            body = STATUS if code >= 400 else b'{"kind":"Lease"}'
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_PATCH = do_PUT = _answer  # noqa: N815

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
