"""Streaming S3 writer and reader against the platform's moto server."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from typing import Any

import boto3
import pytest

from tests.integration.archive.conftest import object_missing
from tests.platform.faults import corrupt_s3_uploads, fault_state
from wpenv.archive.errors import ArchiveVerificationError
from wpenv.archive.s3stream import (
    MIB,
    PART_SIZE,
    S3Reader,
    S3Writer,
    iter_object,
    object_digest,
)

pytestmark = pytest.mark.e2e


def test_small_object_is_one_put_with_sse_and_reads_back(s3: Any, bucket: str, prefix: str) -> None:
    key = f"{prefix}/small.bin"
    data = os.urandom(100_000)
    with S3Writer(s3, bucket, key) as writer:
        for start in range(0, len(data), 7_000):
            writer.write(data[start : start + 7_000])
    result = writer.result
    assert writer.parts == 0
    assert (result.uri, result.size) == (f"s3://{bucket}/{key}", len(data))
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ServerSideEncryption"] == "AES256"
    assert head["ContentLength"] == len(data)
    assert b"".join(iter_object(s3, bucket, key, chunk_size=10_000)) == data
    assert object_digest(s3, bucket, key) == result

    # Small reads inside one chunk (tarfile reads 10 KiB at a time), then the rest at once.
    reader = S3Reader(s3, bucket, key, chunk_size=64 * 1024)
    pieces = [reader.read(10_240) for _ in range(9)]
    assert all(len(piece) <= 10_240 for piece in pieces)
    assert reader.tell() == sum(map(len, pieces))
    assert b"".join(pieces) + reader.read() == data
    assert reader.read(10) == b""
    reader.check(result)


def test_large_object_uses_multipart_in_bounded_memory(s3: Any, bucket: str, prefix: str) -> None:
    key = f"{prefix}/large.bin"
    block = os.urandom(MIB)
    total = 40 * MIB
    expected = hashlib.sha256()
    tracemalloc.start()
    try:
        with S3Writer(s3, bucket, key) as writer:
            for _ in range(total // MIB):
                writer.write(block)
                expected.update(block)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert writer.parts == total // PART_SIZE == 5
    # One part buffered, plus what botocore holds while sending it: far below 40 MiB.
    assert peak < 3 * PART_SIZE, f"peak {peak / MIB:.1f} MiB"
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ETag"].strip('"').endswith("-5")  # a multipart object of 5 parts
    assert head["ServerSideEncryption"] == "AES256"
    assert head["ContentLength"] == total

    reader = S3Reader(s3, bucket, key)
    seen = 0
    while piece := reader.read(3 * MIB + 17):
        assert len(piece) <= 3 * MIB + 17
        seen += len(piece)
    reader.check(writer.result)
    assert seen == total and reader.sha256 == expected.hexdigest()


def test_kms_key_is_used_when_configured(s3: Any, bucket: str, prefix: str) -> None:
    kms = boto3.client("kms")
    key_id = kms.create_key(Description="wpenv archive test")["KeyMetadata"]["KeyId"]
    small, large = f"{prefix}/kms-small.bin", f"{prefix}/kms-large.bin"
    with S3Writer(s3, bucket, small, kms_key_id=key_id) as writer:
        writer.write(b"x" * 1000)
    with S3Writer(s3, bucket, large, kms_key_id=key_id, part_size=5 * MIB) as writer:
        writer.write(os.urandom(11 * MIB))
    assert writer.parts == 3
    for key in (small, large):
        head = s3.head_object(Bucket=bucket, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms"
        assert key_id in head["SSEKMSKeyId"]


def test_an_error_aborts_the_upload_and_leaves_nothing(s3: Any, bucket: str, prefix: str) -> None:
    key = f"{prefix}/aborted.bin"
    writer = S3Writer(s3, bucket, key)

    def fail_halfway() -> None:
        with writer:
            writer.write(os.urandom(PART_SIZE + 1))
            assert writer.parts == 1
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_halfway()
    uploads = s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", [])
    assert [u for u in uploads if u["Key"] == key] == []
    assert object_missing(s3, bucket, key)
    with pytest.raises(ValueError, match="closed"):
        writer.write(b"more")


def test_part_size_below_the_s3_minimum_is_refused(s3: Any, bucket: str) -> None:
    with pytest.raises(ValueError, match="minimum"):
        S3Writer(s3, bucket, "never", part_size=MIB)


@pytest.mark.parametrize("size", [50_000, PART_SIZE + 50_000], ids=["put", "multipart"])
def test_a_corrupted_object_fails_the_check(
    s3: Any, bucket: str, prefix: str, faults: str, size: int
) -> None:
    key = f"{prefix}/damaged-{size}.bin"
    corrupt_s3_uploads(faults, key_suffix=key)
    with S3Writer(s3, bucket, key) as writer:
        writer.write(os.urandom(size))
    assert key in fault_state(faults)["corrupted"]
    reader = S3Reader(s3, bucket, key)
    with pytest.raises(ArchiveVerificationError) as caught:
        reader.check(writer.result)
    assert caught.value.reason == "ArchiveChecksumMismatch"
