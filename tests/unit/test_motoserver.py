"""motoserver: moto's requests one at a time, their bodies read before the lock is taken."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterable
from typing import Any

from tests.platform.motoserver import serialized


class Trickle(io.RawIOBase):
    """A request body that arrives slowly, as from a busy sender."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self, size: int = -1) -> bytes:
        time.sleep(0.2)
        out, self.data = (self.data, b"") if size < 0 else (self.data[:size], self.data[size:])
        return out


def ignore(*_args: Any) -> Any:
    """A start_response that discards the status."""
    return None


def test_requests_never_overlap_inside_moto_and_a_slow_body_does_not_hold_the_lock() -> None:
    lock = threading.RLock()
    inside: list[int] = []
    overlaps: list[int] = []

    def moto(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        inside.append(1)
        if len(inside) > 1:
            overlaps.append(1)
        body = environ["wsgi.input"].read()
        time.sleep(0.05)
        inside.pop()
        start_response("200 OK", [])
        return [b"got ", body]

    app = serialized(moto, lock)
    answers: list[bytes] = []

    def call(body: bytes, length: bool) -> None:
        environ: dict[str, Any] = {"wsgi.input": Trickle(body)}
        environ["CONTENT_LENGTH" if length else "wsgi.input_terminated"] = (
            str(len(body)) if length else True)
        answers.append(b"".join(app(environ, ignore)))

    threads = [threading.Thread(target=call, args=(f"part{i}".encode(), i % 2 == 0))
               for i in range(6)]
    for thread in threads:
        thread.start()
    time.sleep(0.1)  # every body is still arriving: nobody may hold the lock for one
    assert lock.acquire(timeout=0.01)
    lock.release()
    for thread in threads:
        thread.join()
    assert overlaps == []
    assert sorted(answers) == sorted(f"got part{i}".encode() for i in range(6))
