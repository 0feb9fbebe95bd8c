"""Restore's pure parts: archive locations, the extraction filter, the command line."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from wpenv.archive.__main__ import parser
from wpenv.archive.manifest import Artefact
from wpenv.archive.restore import ArchiveLocation, _extraction_filter


def test_locations_parse_with_or_without_a_trailing_slash() -> None:
    here = ArchiveLocation.parse("s3://bucket/archives/ns/acme/20261127T143000Z/")
    assert here == ArchiveLocation.parse("s3://bucket/archives/ns/acme/20261127T143000Z")
    assert here.uri == "s3://bucket/archives/ns/acme/20261127T143000Z/"
    assert here.key("manifest.json") == "archives/ns/acme/20261127T143000Z/manifest.json"
    # An archive copied elsewhere is read from where it is now, not its recorded key.
    copied = Artefact(key="archives/ns/acme/20261127T143000Z/files.tar.gz", size=1, sha256="a")
    moved = ArchiveLocation.parse("s3://other/restores/x/").archived(copied)
    assert (moved.bucket, moved.key) == ("other", "restores/x/files.tar.gz")


def _tar(*members: tuple[tarfile.TarInfo, bytes]) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    buffer.seek(0)
    return buffer


def _info(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.uid = kind, link, 0o4755, 0
    return info


def test_unsafe_links_are_skipped_and_the_rest_extracted(tmp_path: Path) -> None:
    archive = _tar(
        (_info("ok.txt"), b"fine"),
        (_info("abs", tarfile.SYMTYPE, "/etc/passwd"), b""),
        (_info("up", tarfile.SYMTYPE, "../../outside"), b""),
        (_info("in", tarfile.SYMTYPE, "ok.txt"), b""),
    )
    skipped: list[str] = []
    with tarfile.open(fileobj=archive, mode="r|") as tar:
        tar.extractall(tmp_path, filter=_extraction_filter(None, skipped))
    assert skipped == ["abs", "up"]
    assert (tmp_path / "ok.txt").read_bytes() == b"fine"
    assert (tmp_path / "in").is_symlink()
    assert (tmp_path / "ok.txt").stat().st_mode & 0o7777 == 0o755  # no setuid bit


@pytest.mark.parametrize("name", ["../escape.txt", "a/../../escape.txt"])
def test_names_outside_the_directory_are_refused(tmp_path: Path, name: str) -> None:
    target = tmp_path / "target"
    target.mkdir()
    with tarfile.open(fileobj=_tar((_info(name), b"bad")), mode="r|") as tar:
        members = iter(tar)
        keep = _extraction_filter(None, [])
        with pytest.raises(tarfile.OutsideDestinationError):
            keep(next(members), str(target))
    assert not (tmp_path / "escape.txt").exists()


def test_absolute_names_land_inside_the_directory(tmp_path: Path) -> None:
    with tarfile.open(fileobj=_tar((_info("/etc/cron.d/x"), b"bad")), mode="r|") as tar:
        tar.extractall(tmp_path, filter=_extraction_filter(None, []))
    assert (tmp_path / "etc" / "cron.d" / "x").read_bytes() == b"bad"


def test_owner_is_the_new_tenants_when_given(tmp_path: Path) -> None:
    keep = _extraction_filter(20_123, [])
    member = keep(_info("a.txt"), str(tmp_path))
    assert member is not None and (member.uid, member.gid) == (20_123, 20_123)
    assert keep(_info("b.txt"), str(tmp_path)) is not None


def test_command_line() -> None:
    args = parser().parse_args(
        ["restore", "s3://b/archives/ns/n/20261127T143000Z/", "--tenant", "new", "--files-only"]
    )
    assert (args.command, args.tenant, args.files_only, args.database_only, args.force) == (
        "restore",
        "new",
        True,
        False,
        False,
    )
    assert parser().parse_args(["list", "s3://b/archives/ns/n/"]).command == "list"
    for bad in (
        ["restore", "s3://b/x/", "--tenant", "t", "--files-only", "--database-only"],
        ["restore", "s3://b/x/"],
        ["restore", "http://b/x/", "--tenant", "t"],
        ["unknown"],
    ):
        with pytest.raises(SystemExit) as caught:
            parser().parse_args(bad)
        assert caught.value.code == 2
