"""Streaming gzip: what goes in comes out, in bounded pieces, and damage is refused."""

from __future__ import annotations

import gzip
import os
import zlib

import pytest

from wpenv.archive.compression import OUTPUT_CHUNK, GzipWriter, gunzip
from wpenv.archive.errors import ArchiveVerificationError


class Sink:
    """Collects what a GzipWriter passes on."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> int:
        self.data += data
        return len(data)


def _gzip(data: bytes, step: int = 10_000) -> bytes:
    sink = Sink()
    writer = GzipWriter(sink)
    for start in range(0, len(data), step):
        writer.write(data[start : start + step])
    writer.close()
    writer.close()  # idempotent
    return bytes(sink.data)


def _split(data: bytes, step: int) -> list[bytes]:
    return [data[i : i + step] for i in range(0, len(data), step)]


@pytest.mark.parametrize("step", [1, 7, 4096, 1 << 20])
def test_round_trip_whatever_the_chunking(step: int) -> None:
    data = os.urandom(50_000) + b"text " * 20_000
    packed = _gzip(data)
    assert gzip.decompress(packed) == data  # an ordinary .gz
    assert b"".join(gunzip(_split(packed, step))) == data


def test_output_is_deterministic_and_empty_input_is_a_valid_stream() -> None:
    assert _gzip(b"same") == _gzip(b"same")
    assert gzip.decompress(_gzip(b"")) == b""
    assert b"".join(gunzip([_gzip(b"")])) == b""


def test_a_bomb_arrives_in_small_pieces() -> None:
    packed = _gzip(bytes(32 << 20), step=1 << 20)
    assert len(packed) < 100_000
    total = 0
    for piece in gunzip([packed]):
        assert len(piece) <= OUTPUT_CHUNK
        total += len(piece)
    assert total == 32 << 20


def test_damage_is_refused() -> None:
    packed = bytearray(_gzip(os.urandom(100_000)))
    truncated = bytes(packed[: len(packed) // 2])
    with pytest.raises(ArchiveVerificationError, match="ends before"):
        b"".join(gunzip([truncated]))
    with pytest.raises(ArchiveVerificationError, match="after the end"):
        b"".join(gunzip([bytes(packed), b"junk"]))
    with pytest.raises(ArchiveVerificationError, match="after the end"):
        b"".join(gunzip([bytes(packed) + b"junk"]))
    packed[-6] ^= 0xFF  # the trailer's CRC32
    with pytest.raises(ArchiveVerificationError, match="not a valid gzip") as caught:
        b"".join(gunzip([bytes(packed)], what="s3://b/k"))
    assert caught.value.reason == "ArchiveCorrupt" and "s3://b/k" in str(caught.value)
    with pytest.raises(ArchiveVerificationError):
        b"".join(gunzip([zlib.compress(b"zlib, not gzip")]))


def test_writer_refuses_writes_after_close() -> None:
    writer = GzipWriter(Sink())
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.write(b"x")
