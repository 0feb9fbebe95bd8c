"""Stream bytes to and from S3 in bounded memory, encrypted at rest, with their sha256.

An archive can be larger than the operator's memory (a tenant's uploads directory, a big
database), so nothing here holds a whole object: the writer buffers one multipart part at
most and the reader hands out the response body in chunks. Both hash what passes through,
so a verification compares what was read back with what was written without a second copy.

Every object is written with server-side encryption: SSE-S3 (AES256) by default, SSE-KMS
when `archive_kms_key_id` is set. Only CreateMultipartUpload and PutObject take the
encryption arguments; S3 applies them to every part.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError, FlexibleChecksumError

from wpenv import reasons
from wpenv.archive.errors import ArchiveError, ArchiveVerificationError
from wpenv.archive.pipes import ReadOnly, WriteOnly

log = logging.getLogger(__name__)

MIB = 1024 * 1024
PART_SIZE = 8 * MIB
MIN_PART_SIZE = 5 * MIB  # S3 refuses smaller parts, except the last one
MAX_PARTS = 10_000
# S3 allows 10,000 parts: at a constant 8 MiB an object could not exceed 78 GiB. The part
# size doubles every PARTS_PER_STEP parts instead, so the limit is far beyond any archive
# while memory stays proportional to the object (a 100 GiB object buffers 16 MiB).
PARTS_PER_STEP = 1000
READ_CHUNK = MIB
GZIP = "application/gzip"
JSON = "application/json"

TOO_MANY_PARTS = "s3://{bucket}/{key}: more than {limit} parts; raise the part size"
CLOSED = "the S3 writer for s3://{bucket}/{key} is closed"
SIZE_DIFFERS = "s3://{bucket}/{key} holds {actual} bytes; {expected} were written"
SHA_DIFFERS = "s3://{bucket}/{key} read back with another sha256 than was written"
NOT_AS_EXPECTED = "{uri} is not the object expected: its size or sha256 differs"
CHECKSUM_FAILED = "s3://{bucket}/{key} failed S3's own checksum when read back"


@dataclass(frozen=True)
class ArchivedObject:
    """One object written to the archive: where it is and what it held."""

    uri: str
    bucket: str
    key: str
    size: int
    sha256: str


def s3_uri(bucket: str, key: str) -> str:
    """`s3://bucket/key`."""
    return f"s3://{bucket}/{key}"


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """(bucket, key) of `s3://bucket/key`; the key may be empty or end in `/` (a prefix)."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {uri!r}")
    return bucket, key


def encryption_args(kms_key_id: str = "") -> dict[str, str]:
    """The SSE arguments of PutObject / CreateMultipartUpload: KMS when a key is given."""
    if kms_key_id:
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id}
    return {"ServerSideEncryption": "AES256"}


@dataclass(frozen=True)
class Destination:
    """Where one artefact goes: the S3 client, s3://bucket/key, its KMS key and part size."""

    s3: Any
    bucket: str
    key: str
    kms_key_id: str = ""
    part_size: int = PART_SIZE

    def writer(self, content_type: str) -> S3Writer:
        """A multipart upload to this destination (see S3Writer)."""
        return S3Writer(self.s3, self.bucket, self.key, kms_key_id=self.kms_key_id,
                        part_size=self.part_size, content_type=content_type)


class S3Writer(WriteOnly):
    """A write-only binary file whose bytes become one S3 object when it is closed.

    Full parts are uploaded as they fill (multipart upload); an object smaller than one
    part goes up with a single PutObject at close. Use it as a context manager: leaving the
    block normally completes the object, an exception aborts the multipart upload so no
    half-written object (nor its stored parts) is left behind. Not thread-safe.
    """

    def __init__(
        self,
        s3: Any,
        bucket: str,
        key: str,
        *,
        kms_key_id: str = "",
        part_size: int = PART_SIZE,
        content_type: str = "application/octet-stream",
    ) -> None:
        """`s3` is a boto3 S3 client; `part_size` is the first parts' size (>= 5 MiB)."""
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part size {part_size} is below S3's minimum of {MIN_PART_SIZE}")
        self.s3 = s3
        self.bucket = bucket
        self.key = key
        self.part_size = part_size
        self._extra = {"ContentType": content_type, **encryption_args(kms_key_id)}
        self._buffer = bytearray()
        self._sha = hashlib.sha256()
        self._size = 0
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._closed = False
        self._result: ArchivedObject | None = None

    # --- the file interface (what tarfile, gzip and shutil call; the rest is WriteOnly's) ---

    @property
    def closed(self) -> bool:
        """Whether the object was completed or aborted."""
        return self._closed

    def tell(self) -> int:
        """Bytes written so far."""
        return self._size

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Buffer `data`, uploading each part as soon as it is full; returns len(data)."""
        if self._closed:
            raise ValueError(CLOSED.format(bucket=self.bucket, key=self.key))
        view = memoryview(data).cast("B")
        written = len(view)
        self._sha.update(view)
        self._size += written
        while view:
            room = self._part_limit() - len(self._buffer)
            self._buffer += view[:room]
            view = view[room:]
            if len(self._buffer) >= self._part_limit():
                self._upload_part()
        return written

    def close(self) -> None:
        """Complete the object (idempotent); on failure the multipart upload is aborted."""
        if self._closed:
            return
        try:
            if self._upload_id is None:
                self.s3.put_object(
                    Bucket=self.bucket, Key=self.key, Body=bytes(self._buffer), **self._extra
                )
            else:
                if self._buffer:
                    self._upload_part()
                self.s3.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=self.key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},
                )
        except BaseException:
            self.abort()
            raise
        self._buffer = bytearray()
        self._closed = True
        self._result = ArchivedObject(
            uri=s3_uri(self.bucket, self.key),
            bucket=self.bucket,
            key=self.key,
            size=self._size,
            sha256=self._sha.hexdigest(),
        )
        log.info("wrote %s (%d bytes, %d parts)", self._result.uri, self._size, self.parts)

    def abort(self) -> None:
        """Drop the buffer and abort the multipart upload, if one was started (idempotent)."""
        self._closed = True
        self._buffer = bytearray()
        upload_id, self._upload_id = self._upload_id, None
        if upload_id is None:
            return
        try:
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=upload_id)
        except ClientError as exc:  # the original error matters more; a bucket lifecycle
            # rule (AbortIncompleteMultipartUpload) removes what this could not
            log.warning("could not abort the upload of s3://%s/%s: %s", self.bucket, self.key, exc)
        else:
            log.info("aborted the upload of s3://%s/%s", self.bucket, self.key)

    # --- results ---------------------------------------------------------------------------

    @property
    def result(self) -> ArchivedObject:
        """The completed object; only after a successful close."""
        if self._result is None:
            raise ValueError(f"s3://{self.bucket}/{self.key} is not complete")
        return self._result

    @property
    def parts(self) -> int:
        """Parts uploaded so far (0 for an object sent with one PutObject)."""
        return len(self._parts)

    # --- internals -------------------------------------------------------------------------

    def _part_limit(self) -> int:
        doublings: int = len(self._parts) // PARTS_PER_STEP
        return self.part_size << doublings

    def _upload_part(self) -> None:
        if self._upload_id is None:
            created = self.s3.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, **self._extra
            )
            self._upload_id = str(created["UploadId"])
        number = len(self._parts) + 1
        if number > MAX_PARTS:
            raise ArchiveError(
                reasons.ARCHIVE_TOO_LARGE,
                TOO_MANY_PARTS.format(bucket=self.bucket, key=self.key, limit=MAX_PARTS),
            )
        body, self._buffer = self._buffer, bytearray()
        answer = self.s3.upload_part(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=body,
        )
        self._parts.append({"PartNumber": number, "ETag": answer["ETag"]})


def iter_object(s3: Any, bucket: str, key: str, chunk_size: int = READ_CHUNK) -> Iterator[bytes]:
    """The object's bytes in chunks of at most `chunk_size`, straight from the response."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        yield from body.iter_chunks(chunk_size)
    except FlexibleChecksumError as exc:
        raise ArchiveVerificationError(
            reasons.ARCHIVE_CHECKSUM_MISMATCH, CHECKSUM_FAILED.format(bucket=bucket, key=key)
        ) from exc
    finally:
        body.close()


class S3Reader(ReadOnly):
    """A read-only binary file over one S3 object that hashes what it hands out.

    `read(n)` serves tarfile's stream mode; `chunks()` the SQL loader. `check(expected)`
    reads what is left and compares size and sha256 with what the writer recorded. As a
    context manager it releases the connection when the block ends, however it ends.
    """

    def __init__(self, s3: Any, bucket: str, key: str, *, chunk_size: int = READ_CHUNK) -> None:
        """Nothing is requested until the first read."""
        self.bucket = bucket
        self.key = key
        self._source = iter_object(s3, bucket, key, chunk_size)
        self._sha = hashlib.sha256()
        self._size = 0
        # The current chunk and how much of it was handed out: tarfile reads 10 KiB at a
        # time, and slicing the rest off a 1 MiB chunk on every read would copy it ~100x.
        self._pending = b""
        self._offset = 0
        self._eof = False

    def _next_chunk(self) -> bytes:
        if self._eof:
            return b""
        for chunk in self._source:
            if chunk:
                self._sha.update(chunk)
                self._size += len(chunk)
                return bytes(chunk)
        self._eof = True
        return b""

    def chunks(self) -> Iterator[bytes]:
        """The rest of the object, chunk by chunk."""
        if self._offset < len(self._pending):
            rest = self._pending[self._offset :]
            self._pending, self._offset = b"", 0
            yield rest
        while chunk := self._next_chunk():
            yield chunk

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes (all that is left when negative); b"" at the end."""
        if size is None or size < 0:
            return b"".join(self.chunks())
        if self._offset >= len(self._pending):
            self._pending, self._offset = self._next_chunk(), 0
        start = self._offset
        self._offset = min(start + size, len(self._pending))
        return self._pending[start : self._offset]

    def tell(self) -> int:
        """Bytes handed out so far."""
        return self._size - (len(self._pending) - self._offset)

    def close(self) -> None:
        """Release the connection (reading stops; the digest stays partial)."""
        self._eof = True
        self._pending, self._offset = b"", 0
        close = getattr(self._source, "close", None)
        if close is not None:
            close()

    def drain(self) -> None:
        """Read (and hash) whatever is left, e.g. the padding after a tar's last member."""
        for _ in self.chunks():
            pass

    @property
    def size(self) -> int:
        """Bytes read from S3 so far."""
        return self._size

    @property
    def sha256(self) -> str:
        """Hex sha256 of the bytes read from S3 so far."""
        return self._sha.hexdigest()

    def check(self, expected: ArchivedObject) -> None:
        """Read to the end and refuse an object whose size or sha256 differs from `expected`."""
        self.drain()
        if self._size != expected.size:
            raise ArchiveVerificationError(
                reasons.ARCHIVE_SIZE_MISMATCH,
                SIZE_DIFFERS.format(
                    bucket=self.bucket, key=self.key, actual=self._size, expected=expected.size
                ),
            )
        if self.sha256 != expected.sha256:
            raise ArchiveVerificationError(
                reasons.ARCHIVE_CHECKSUM_MISMATCH,
                SHA_DIFFERS.format(bucket=self.bucket, key=self.key),
            )


def object_digest(s3: Any, bucket: str, key: str) -> ArchivedObject:
    """Read an object once, streaming, and describe it (size, sha256) without keeping it."""
    with S3Reader(s3, bucket, key) as reader:
        reader.drain()
    return ArchivedObject(s3_uri(bucket, key), bucket, key, reader.size, reader.sha256)


def require_object(s3: Any, archived: ArchivedObject) -> None:
    """Read the object back and insist it is `archived` (size and sha256), byte for byte."""
    if object_digest(s3, archived.bucket, archived.key) != archived:
        raise ArchiveVerificationError(reasons.ARCHIVE_CHECKSUM_MISMATCH, NOT_AS_EXPECTED.format(
            uri=archived.uri))


def put_bytes(
    s3: Any, bucket: str, key: str, body: bytes, *, kms_key_id: str = "", content_type: str = JSON
) -> ArchivedObject:
    """A small object (manifest, users) in one PutObject, encrypted like the rest."""
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=body,
        ContentType=content_type,
        **encryption_args(kms_key_id),
    )
    return ArchivedObject(
        s3_uri(bucket, key), bucket, key, len(body), hashlib.sha256(body).hexdigest()
    )
