"""What the archive's streams answer as files: one way only, never seekable.

tarfile, gzip and shutil ask a file object whether it reads, writes and seeks before they
use it. `S3Writer`, `GzipWriter` and `S3Reader` are pipes (bytes pass through once, in
bounded memory), so they all answer alike; the answers live here, once. Each stream keeps
what is its own: `read` or `write`, `tell`, and what `close` means.
"""

from __future__ import annotations

import io
from types import TracebackType
from typing import Self


class Pipe:
    """A binary file that only reads or only writes, and cannot seek (like any pipe).

    As a context manager it closes when the block ends well and aborts when it fails; a
    pipe whose close completes something (an S3 object) overrides `abort` to drop it.
    """

    readable_end = False  # True for a source, False for a sink

    def readable(self) -> bool:
        """Whether this is a source."""
        return self.readable_end

    def writable(self) -> bool:
        """Whether this is a sink."""
        return not self.readable_end

    def seekable(self) -> bool:
        """Never: what passed through is gone."""
        return False

    def seek(self, pos: int, whence: int = 0) -> int:
        """Unsupported, like any pipe."""
        raise io.UnsupportedOperation(f"{type(self).__name__} is not seekable")

    def close(self) -> None:
        """End the stream; each pipe says what that means."""
        raise NotImplementedError

    def abort(self) -> None:
        """End the stream after a failure: by default the same as closing it."""
        self.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class WriteOnly(Pipe):
    """A write-only pipe: reading is refused, and flushing has nothing to do."""

    def read(self, size: int = -1) -> bytes:
        """Unsupported: write-only."""
        raise io.UnsupportedOperation(f"{type(self).__name__} is write-only")

    def flush(self) -> None:
        """Nothing: bytes go on when there are enough of them (a part, a deflate block)."""


class ReadOnly(Pipe):
    """A read-only pipe: writing is refused."""

    readable_end = True

    def write(self, data: bytes) -> int:
        """Unsupported: read-only."""
        raise io.UnsupportedOperation(f"{type(self).__name__} is read-only")
