"""The pure parts of the S3 streams: URIs, encryption arguments, argument checks."""

from __future__ import annotations

import pytest

from wpenv.archive.s3stream import (
    MIB,
    MIN_PART_SIZE,
    ArchivedObject,
    S3Writer,
    encryption_args,
    parse_s3_uri,
    s3_uri,
)


def test_uris_round_trip() -> None:
    assert s3_uri("b", "a/b/c.gz") == "s3://b/a/b/c.gz"
    assert parse_s3_uri("s3://b/a/b/c.gz") == ("b", "a/b/c.gz")
    assert parse_s3_uri("s3://b/prefix/") == ("b", "prefix/")
    assert parse_s3_uri("s3://b") == ("b", "")


@pytest.mark.parametrize("uri", ["https://b/k", "b/k", "s3:///k", ""])
def test_bad_uris_are_refused(uri: str) -> None:
    with pytest.raises(ValueError, match=r"s3://|bucket"):
        parse_s3_uri(uri)


def test_sse_s3_by_default_and_kms_when_a_key_is_set() -> None:
    assert encryption_args() == {"ServerSideEncryption": "AES256"}
    assert encryption_args("") == {"ServerSideEncryption": "AES256"}
    assert encryption_args("alias/wpenv-archive") == {
        "ServerSideEncryption": "aws:kms",
        "SSEKMSKeyId": "alias/wpenv-archive",
    }


def test_parts_below_the_s3_minimum_are_refused_before_any_call() -> None:
    with pytest.raises(ValueError, match="minimum"):
        S3Writer(None, "b", "k", part_size=MIN_PART_SIZE - 1)
    writer = S3Writer(None, "b", "k", part_size=MIN_PART_SIZE)  # no request is made yet
    assert writer.tell() == 0 and writer.parts == 0 and not writer.closed


def test_the_result_is_only_there_after_a_successful_close() -> None:
    writer = S3Writer(None, "b", "k")
    with pytest.raises(ValueError, match="not complete"):
        _ = writer.result
    writer.abort()  # nothing was started: no request either
    assert writer.closed
    with pytest.raises(ValueError, match="closed"):
        writer.write(b"x")


def test_buffering_stops_at_one_part() -> None:
    # Below one part nothing is sent, so no client is needed to see what is buffered.
    writer = S3Writer(None, "b", "k", part_size=5 * MIB)
    for _ in range(4):
        assert writer.write(bytes(MIB)) == MIB
    assert writer.tell() == 4 * MIB and writer.parts == 0


def test_archived_objects_compare_by_value() -> None:
    one = ArchivedObject("s3://b/k", "b", "k", 3, "ab")
    assert one == ArchivedObject("s3://b/k", "b", "k", 3, "ab")
    assert one != ArchivedObject("s3://b/k", "b", "k", 3, "cd")
