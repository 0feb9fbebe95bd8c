"""Directory archives (tar.gz) to S3 and their verification, against the moto server."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.integration.archive.conftest import fill_directory
from tests.platform.faults import corrupt_s3_uploads
from wpenv.archive.errors import ArchiveVerificationError
from wpenv.archive.files import Member, archive_directory, scan_members, verify_archive
from wpenv.archive.s3stream import Destination, iter_object

pytestmark = pytest.mark.e2e


@pytest.fixture
def tenant_dir(tmp_path: Path) -> Path:
    """A filled tenant directory, and a secret file next to it that a link points to."""
    outside = tmp_path / "operator-secret.txt"
    outside.write_text("must never be archived\n")
    root = tmp_path / "tenant"
    root.mkdir()
    fill_directory(root, outside)
    return root


def _tar(s3: Any, bucket: str, key: str) -> dict[str, tarfile.TarInfo]:
    data = b"".join(iter_object(s3, bucket, key))
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        infos = {info.name: info for info in tar.getmembers()}
        for info in infos.values():
            if info.isreg():
                extracted = tar.extractfile(info)
                assert extracted is not None
                assert b"must never be archived" not in extracted.read()
    return infos


def test_round_trip_keeps_structure_links_modes_and_times(
    tenant_dir: Path, s3: Any, bucket: str, prefix: str
) -> None:
    key = f"{prefix}/files.tar.gz"
    archive = archive_directory(tenant_dir, Destination(s3, bucket, key))
    assert not archive.missing
    names = {member.name for member in archive.members}
    assert {
        "wp-config.php",
        "empty.txt",
        "wp-content/uploads/2026/11/photo.jpg",
        "wp-content/uploads/Grüße 東京.txt",
        "wp-content/plugins/empty-dir",
        "latest",
        "escape",
        "wp-content/dirlink",
    } <= names
    assert not [name for name in names if name.startswith(("/", "./")) or ".." in name]
    by_name = {member.name: member for member in archive.members}
    assert by_name["empty.txt"] == Member("empty.txt", "file", 0)
    assert by_name["wp-content/uploads/2026/11/photo.jpg"].size == 70_000
    assert by_name["escape"].kind == "symlink"
    # Sorted, the second name comes first: it holds the content, the other is the link.
    assert by_name["wp-config.hardlink"] == Member("wp-config.hardlink", "file", 16)
    assert by_name["wp-config.php"] == Member("wp-config.php", "hardlink", 0, "wp-config.hardlink")
    assert archive.total_bytes == sum(member.size for member in archive.members)
    assert s3.head_object(Bucket=bucket, Key=key)["ServerSideEncryption"] == "AES256"

    infos = _tar(s3, bucket, key)
    assert infos["escape"].issym() and infos["escape"].linkname == str(
        tenant_dir.parent / "operator-secret.txt"
    )
    assert infos["wp-content/dirlink"].issym()
    assert "wp-content/dirlink/2026" not in infos  # a link to a directory is not followed
    assert infos["wp-config.php"].mode & 0o777 == 0o640
    assert infos["wp-content/index.php"].mtime == 1_700_000_000
    stat = (tenant_dir / "wp-config.php").stat()
    assert (infos["wp-config.php"].uid, infos["wp-config.php"].gid) == (stat.st_uid, stat.st_gid)

    assert verify_archive(tenant_dir, s3, archive.object) == list(archive.members)


def test_verify_detects_a_missing_file_and_a_changed_size(
    tenant_dir: Path, s3: Any, bucket: str, prefix: str
) -> None:
    archive = archive_directory(tenant_dir, Destination(s3, bucket, f"{prefix}/files.tar.gz"))
    (tenant_dir / "empty.txt").unlink()
    with pytest.raises(ArchiveVerificationError, match=r"empty\.txt is in the archive but not"):
        verify_archive(tenant_dir, s3, archive.object)
    (tenant_dir / "empty.txt").write_bytes(b"")
    verify_archive(tenant_dir, s3, archive.object)

    longer = "<?php // Silence is golden, but longer.\n"
    (tenant_dir / "wp-content" / "index.php").write_text(longer)
    with pytest.raises(ArchiveVerificationError) as caught:
        verify_archive(tenant_dir, s3, archive.object)
    assert "wp-content/index.php has 40 bytes, 28 in the archive" in str(caught.value)
    assert caught.value.reason == "FilesArchiveMismatch"

    (tenant_dir / "new.txt").write_text("late\n")
    with pytest.raises(ArchiveVerificationError, match=r"new\.txt is missing from the archive"):
        verify_archive(tenant_dir, s3, archive.object)


def test_a_missing_directory_archives_as_an_empty_tar(
    tmp_path: Path, s3: Any, bucket: str, prefix: str
) -> None:
    gone = tmp_path / "never-created"
    key = f"{prefix}/files.tar.gz"
    archive = archive_directory(gone, Destination(s3, bucket, key))
    assert archive.missing and archive.members == () and archive.total_bytes == 0
    assert _tar(s3, bucket, key) == {}
    assert verify_archive(gone, s3, archive.object) == []
    assert scan_members(gone) == []


def test_verify_fails_on_a_corrupted_upload(
    tenant_dir: Path, s3: Any, bucket: str, prefix: str, faults: str
) -> None:
    key = f"{prefix}/files.tar.gz"
    corrupt_s3_uploads(faults, key_suffix=key)
    archive = archive_directory(tenant_dir, Destination(s3, bucket, key))
    with pytest.raises(ArchiveVerificationError) as caught:
        verify_archive(tenant_dir, s3, archive.object)
    assert caught.value.reason in {"ArchiveCorrupt", "ArchiveChecksumMismatch"}
