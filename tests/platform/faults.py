"""Faults a test can switch on in the platform's moto server, over HTTP.

``POST /wpenv/faults/s3-corrupt`` with ``{"key_suffix": "database.sql.gz", "count": 1}``
arms a corruption: the next ``count`` S3 objects whose key ends with ``key_suffix`` get
one byte flipped (the middle one) as their upload completes, whether by PutObject or by
CompleteMultipartUpload, as if the storage had damaged them at rest. ``DELETE
/wpenv/faults`` disarms everything; ``GET /wpenv/faults`` shows what is still armed.

Other fault kinds plug in as a :class:`FaultKind` (chaos.py: ``/wpenv/faults/aws``, AWS's
throttling and server errors): their path is theirs, ``DELETE /wpenv/faults`` resets them
too and ``GET /wpenv/faults`` shows their state under their name.

Like the simulator, this edits moto's backend in the server's own process (it wraps
``S3Backend.put_object``, which both upload paths end in); the code under test keeps
talking plain S3 and has no idea. Tests call :func:`corrupt_s3_uploads` and
:func:`clear_faults`.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from moto.s3.models import S3Backend

FAULTS_PATH = "/wpenv/faults"
S3_CORRUPT_PATH = f"{FAULTS_PATH}/s3-corrupt"
MAX_BODY = 64 * 1024


def flip_byte(value: bytes) -> bytes:
    """`value` with its middle byte inverted (the same length, a different sha256)."""
    if not value:
        return value
    middle = len(value) // 2
    return value[:middle] + bytes([value[middle] ^ 0xFF]) + value[middle + 1 :]


class FaultKind(Protocol):
    """Another kind of fault with an endpoint of its own under FAULTS_PATH."""

    name: str  # its key in the GET /wpenv/faults answer
    path: str  # the endpoint it answers itself

    def handle(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Answer a request to `path`."""

    def clear(self) -> None:
        """Disarm (back to the start-up settings)."""

    def state(self) -> dict[str, Any]:
        """What is armed."""


@dataclass
class S3Corruption:
    """Corrupt the next `remaining` objects whose key ends with `key_suffix`."""

    key_suffix: str
    remaining: int


class Faults:
    """The armed faults, and the hook into moto that applies them (thread-safe)."""

    def __init__(self, kinds: Sequence[FaultKind] = ()) -> None:
        """Nothing armed, nothing hooked; `kinds` answer their own paths."""
        self.kinds = {kind.path: kind for kind in kinds}
        self.lock = threading.Lock()
        self.s3_corruptions: list[S3Corruption] = []
        self.corrupted: list[str] = []  # keys damaged so far, for the GET answer
        self._original: Callable[..., Any] | None = None

    def arm_s3_corruption(self, key_suffix: str, count: int = 1) -> None:
        """Damage the next `count` objects whose key ends with `key_suffix`."""
        if count < 1:
            raise ValueError("count must be at least 1")
        with self.lock:
            self.s3_corruptions.append(S3Corruption(key_suffix, count))

    def clear(self) -> None:
        """Disarm everything."""
        with self.lock:
            self.s3_corruptions.clear()
            self.corrupted.clear()
        for kind in self.kinds.values():
            kind.clear()

    def take(self, key_name: str) -> bool:
        """Whether this object is to be damaged (uses up one of the armed count)."""
        with self.lock:
            for corruption in self.s3_corruptions:
                if key_name.endswith(corruption.key_suffix):
                    corruption.remaining -= 1
                    if corruption.remaining <= 0:
                        self.s3_corruptions.remove(corruption)
                    self.corrupted.append(key_name)
                    return True
        return False

    def state(self) -> dict[str, Any]:
        """What is armed and what was damaged."""
        with self.lock:
            state = {
                "s3_corrupt": [asdict(c) for c in self.s3_corruptions],
                "corrupted": list(self.corrupted),
            }
        return {**state, **{kind.name: kind.state() for kind in self.kinds.values()}}

    # -- the hook into moto ----------------------------------------------------------------

    def install_hooks(self) -> None:
        """Wrap moto's ``S3Backend.put_object`` (class-wide, in this process)."""
        if self._original is not None:
            return
        original = S3Backend.put_object
        self._original = original
        faults = self

        def put_object(
            backend: S3Backend,
            bucket_name: str,
            key_name: str,
            value: bytes,
            *args: Any,
            **kwargs: Any,
        ) -> Any:
            if value and faults.take(key_name):
                value = flip_byte(bytes(value))
            return original(backend, bucket_name, key_name, value, *args, **kwargs)

        setattr(S3Backend, "put_object", put_object)  # noqa: B010 - mypy forbids plain assignment

    def uninstall_hooks(self) -> None:
        """Put moto's method back."""
        if self._original is not None:
            setattr(S3Backend, "put_object", self._original)  # noqa: B010
            self._original = None

    # -- the HTTP endpoint -----------------------------------------------------------------

    def wsgi(self, app: WSGIApplication) -> WSGIApplication:
        """Answer the fault paths ourselves and hand every other request to `app`."""

        def respond(
            start_response: StartResponse, status: str, document: dict[str, Any]
        ) -> Iterable[bytes]:
            body = json.dumps(document).encode()
            start_response(
                status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            )
            return [body]

        def handle(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "")
            method = environ.get("REQUEST_METHOD", "GET")
            if path in self.kinds:
                return self.kinds[path].handle(environ, start_response)
            if path == S3_CORRUPT_PATH and method == "POST":
                try:
                    length = min(int(environ.get("CONTENT_LENGTH") or 0), MAX_BODY)
                    request = json.loads(environ["wsgi.input"].read(length) or b"{}")
                    self.arm_s3_corruption(str(request["key_suffix"]), int(request.get("count", 1)))
                except (ValueError, KeyError, TypeError) as exc:
                    return respond(start_response, "400 Bad Request", {"error": str(exc)})
                return respond(start_response, "200 OK", self.state())
            if path == FAULTS_PATH and method == "DELETE":
                self.clear()
                return respond(start_response, "200 OK", self.state())
            if path == FAULTS_PATH and method == "GET":
                return respond(start_response, "200 OK", self.state())
            if path.startswith(FAULTS_PATH + "/") or path == FAULTS_PATH:
                return respond(start_response, "404 Not Found", {"error": "no such fault"})
            return app(environ, start_response)

        return handle


# -- the client side, for tests ----------------------------------------------------------------


def _call(endpoint: str, method: str, path: str, document: dict[str, Any] | None = None) -> Any:
    data = None if document is None else json.dumps(document).encode()
    request = urllib.request.Request(
        endpoint.rstrip("/") + path,
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def corrupt_s3_uploads(endpoint: str, key_suffix: str, count: int = 1) -> dict[str, Any]:
    """Arm the server at `endpoint` (AWS_ENDPOINT_URL) to damage the next matching uploads."""
    state: dict[str, Any] = _call(
        endpoint, "POST", S3_CORRUPT_PATH, {"key_suffix": key_suffix, "count": count}
    )
    return state


def clear_faults(endpoint: str) -> dict[str, Any]:
    """Disarm every fault of the server at `endpoint`."""
    state: dict[str, Any] = _call(endpoint, "DELETE", FAULTS_PATH)
    return state


def fault_state(endpoint: str) -> dict[str, Any]:
    """What the server at `endpoint` still has armed, and which keys it damaged."""
    state: dict[str, Any] = _call(endpoint, "GET", FAULTS_PATH)
    return state
