"""The one-way file interface every archive stream shares."""

from __future__ import annotations

import io

import pytest

from wpenv.archive.pipes import ReadOnly, WriteOnly


class Tap(WriteOnly):
    """A sink that records how it ended."""

    def __init__(self) -> None:
        self.ended = ""

    def close(self) -> None:
        self.ended = "closed"


class Spout(ReadOnly):
    """A source that records how it ended, aborting like closing (the default)."""

    def __init__(self) -> None:
        self.ended = ""

    def close(self) -> None:
        self.ended = "closed"


class Upload(Tap):
    """A sink whose close completes something, so a failure must abort instead."""

    def abort(self) -> None:
        self.ended = "aborted"


def test_a_sink_only_writes_and_never_seeks() -> None:
    tap = Tap()
    assert (tap.writable(), tap.readable(), tap.seekable()) == (True, False, False)
    tap.flush()  # nothing to do, and no error
    with pytest.raises(io.UnsupportedOperation, match="Tap is write-only"):
        tap.read()
    with pytest.raises(io.UnsupportedOperation, match="Tap is not seekable"):
        tap.seek(0)


def test_a_source_only_reads_and_never_seeks() -> None:
    spout = Spout()
    assert (spout.readable(), spout.writable(), spout.seekable()) == (True, False, False)
    with pytest.raises(io.UnsupportedOperation, match="Spout is read-only"):
        spout.write(b"x")
    with pytest.raises(io.UnsupportedOperation, match="Spout is not seekable"):
        spout.seek(0, io.SEEK_END)


def test_a_block_that_ends_well_closes() -> None:
    with Upload() as upload:
        pass
    assert upload.ended == "closed"


def test_a_failed_block_aborts_and_the_error_propagates() -> None:
    upload, spout = Upload(), Spout()
    with pytest.raises(RuntimeError, match="boom"), upload, spout:
        raise RuntimeError("boom")
    assert upload.ended == "aborted"
    assert spout.ended == "closed"  # aborting a plain pipe is closing it
