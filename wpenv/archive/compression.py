"""Streaming gzip both ways, in bounded memory.

The standard library's gzip and tarfile modules do this too, but tarfile's stream mode
compresses at level 9 with no way to choose (Python 3.11), which is several times slower
than level 6 for a few percent of size, and `zlib.decompress` of a whole object would hold
it in memory. Decompression here also caps the output of every step, so a small object
that inflates to gigabytes (corrupt or hostile) still arrives in small pieces.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from typing import Protocol

from wpenv import reasons
from wpenv.archive.errors import ArchiveVerificationError
from wpenv.archive.pipes import WriteOnly

GZIP_WBITS = 16 + zlib.MAX_WBITS  # gzip header and trailer (CRC32, length) only
LEVEL = 6
OUTPUT_CHUNK = 256 * 1024

NOT_GZIP = "{what} is not a valid gzip stream ({detail})"
TRUNCATED = "{what} ends before its gzip stream does"
TRAILING = "{what} has data after the end of its gzip stream"


class Sink(Protocol):
    """Anything with `write(bytes)`, such as an S3Writer."""

    def write(self, data: bytes, /) -> object:
        """Take these bytes."""
        ...


class GzipWriter(WriteOnly):
    """A write-only file that gzips what it is given into `sink`; `close` ends the stream.

    Closing does not close the sink: the caller owns it (an S3Writer completes its object
    only when its own block ends without an error).
    """

    def __init__(self, sink: Sink, level: int = LEVEL) -> None:
        """Deterministic output: no file name and a zero timestamp in the header."""
        self._sink = sink
        self._compressor = zlib.compressobj(level, zlib.DEFLATED, GZIP_WBITS)
        self._size = 0
        self._closed = False

    def write(self, data: bytes) -> int:
        """Compress and pass on; returns len(data)."""
        if self._closed:
            raise ValueError("write to a closed GzipWriter")
        self._size += len(data)
        out = self._compressor.compress(data)
        if out:
            self._sink.write(out)
        return len(data)

    def close(self) -> None:
        """Write the end of the stream (idempotent)."""
        if not self._closed:
            self._closed = True
            self._sink.write(self._compressor.flush())

    def tell(self) -> int:
        """Uncompressed bytes written so far."""
        return self._size

    @property
    def size(self) -> int:
        """Uncompressed bytes written so far."""
        return self._size


def gunzip(chunks: Iterable[bytes], what: str = "the archive") -> Iterator[bytes]:
    """Decompress one gzip member chunk by chunk, each output at most OUTPUT_CHUNK bytes.

    A damaged stream, a missing end or bytes after the end raise ArchiveVerificationError
    (zlib checks the trailer's CRC32 and length itself).
    """
    inflater = zlib.decompressobj(GZIP_WBITS)
    try:
        for chunk in chunks:
            data = chunk
            while data:
                if inflater.eof:
                    raise ArchiveVerificationError(
                        reasons.ARCHIVE_CORRUPT, TRAILING.format(what=what)
                    )
                out = inflater.decompress(data, OUTPUT_CHUNK)
                if out:
                    yield out
                data = inflater.unconsumed_tail
                # zlib may hold more output for input it has already taken.
                while len(out) == OUTPUT_CHUNK and not data and not inflater.eof:
                    out = inflater.decompress(b"", OUTPUT_CHUNK)
                    if out:
                        yield out
            if inflater.unused_data:
                raise ArchiveVerificationError(reasons.ARCHIVE_CORRUPT, TRAILING.format(what=what))
        rest = inflater.flush()
        if rest:
            yield rest
    except zlib.error as exc:
        raise ArchiveVerificationError(
            reasons.ARCHIVE_CORRUPT, NOT_GZIP.format(what=what, detail=exc)
        ) from None
    if not inflater.eof:
        raise ArchiveVerificationError(reasons.ARCHIVE_CORRUPT, TRUNCATED.format(what=what))
