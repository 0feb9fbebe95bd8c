"""Archive a tenant's directory on EFS to S3 as a streamed tar.gz, and check it read back.

The tar holds the directory's *contents* under relative names (`wp-content/uploads/a.jpg`,
no leading `./` or tenant path), so it extracts into any tenant's directory. Modes, owner
ids and mtimes are kept; symbolic links are stored as links and never followed, so a link
pointing out of the tenant's directory cannot pull another tenant's (or the operator's)
files into the archive; hard links are stored once, as tar does. Sockets are skipped:
they cannot be archived and are recreated by whoever listens on them.

Reading every file needs read access to the whole tree: the tenant's files belong to its
own POSIX user (mode 0750 directories), so the archiving process runs as root or with
CAP_DAC_READ_SEARCH. Call it with the tenant's service stopped, so no file changes while
it is read.

The stream is tar ("w|") inside our own gzip writer rather than tarfile's "w|gz", which
compresses at level 9 on Python 3.11 (slow, for almost no gain on images); the result is
an ordinary .tar.gz that `tar xzf` and tarfile's "r|gz" read.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wpenv import reasons
from wpenv.archive.compare import differences
from wpenv.archive.compression import GzipWriter
from wpenv.archive.errors import ArchiveError, ArchiveVerificationError
from wpenv.archive.s3stream import GZIP, ArchivedObject, Destination, S3Reader
from wpenv.crashpoints import MIDDLE, UPLOAD, crashpoint

log = logging.getLogger(__name__)

MAX_LISTED = 10
NOT_A_DIRECTORY = "{path} is not a directory"
READ_FAILED = "reading {name} for the archive failed: {error}"
MISSING_SOURCE = "directory %s does not exist: archived as an empty tar"
CORRUPT = "{uri} is not a readable tar.gz ({detail})"
MISMATCH = "the archive {uri} does not match directory {path}: {problems}"


@dataclass(frozen=True)
class Member:
    """One archive entry as compared: name, kind, size (0 unless a file) and link target."""

    name: str
    kind: str  # file, dir, symlink, hardlink or special
    size: int
    link: str = ""


@dataclass(frozen=True)
class FilesArchive:
    """A directory archived to S3: the object and what went into it."""

    directory: str
    object: ArchivedObject
    members: tuple[Member, ...]
    missing: bool  # the directory did not exist; the tar is empty

    @property
    def count(self) -> int:
        """Number of entries (files, directories, links)."""
        return len(self.members)

    @property
    def total_bytes(self) -> int:
        """Bytes of file content, before compression."""
        return sum(member.size for member in self.members)


def shown(name: str) -> str:
    """A file name safe to print, even one that is not valid UTF-8."""
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


def member_of(info: tarfile.TarInfo) -> Member:
    """How a tar entry is compared."""
    if info.isreg():
        return Member(info.name, "file", info.size)
    if info.islnk():
        return Member(info.name, "hardlink", 0, info.linkname)
    if info.isdir():
        return Member(info.name, "dir", 0)
    if info.issym():
        return Member(info.name, "symlink", 0, info.linkname)
    return Member(info.name, "special", 0)


def walk(root: Path) -> Iterator[tuple[str, Path]]:
    """(relative name, path) of everything under `root`, each directory before its contents,
    sorted by name, never following a symbolic link."""
    pending: list[tuple[str, Path]] = [("", root)]
    while pending:
        prefix, directory = pending.pop()
        with os.scandir(directory) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
        subdirectories = []
        for entry in entries:
            name = f"{prefix}{entry.name}"
            yield name, Path(entry.path)
            if entry.is_dir(follow_symlinks=False):
                subdirectories.append((f"{name}/", Path(entry.path)))
        pending.extend(reversed(subdirectories))


def _entries(tar: tarfile.TarFile, root: Path) -> Iterator[tuple[tarfile.TarInfo, Path]]:
    """The tar headers of `root`'s contents as `tar` would write them (sockets left out)."""
    for name, path in walk(root):
        try:
            info = tar.gettarinfo(str(path), arcname=name)
        except OSError as exc:
            raise ArchiveError(
                reasons.FILES_ARCHIVE_FAILED,
                READ_FAILED.format(name=shown(name), error=exc.strerror),
            ) from None
        if info is None:  # a socket
            log.info("skipped %s: a socket cannot be archived", shown(name))
            continue
        yield info, path


def scan_members(root: Path) -> list[Member]:
    """What an archive of `root` made now would list (empty when `root` does not exist)."""
    if not root.exists():
        return []
    # A TarFile that never writes: gettarinfo gives exactly the headers archiving makes,
    # hard-link detection included.
    with tarfile.open(fileobj=io.BytesIO(), mode="w") as probe:
        return [member_of(info) for info, _ in _entries(probe, root)]


def archive_directory(path: Path, to: Destination) -> FilesArchive:
    """Write the contents of `path` to `to` as tar.gz; a missing `path` gives an
    empty tar (and `missing=True`). Any read error aborts the upload and raises ArchiveError.
    """
    path = Path(path)
    missing = not path.exists()
    if missing:
        log.warning(MISSING_SOURCE, path)
    elif not path.is_dir():
        raise ArchiveError(reasons.FILES_ARCHIVE_FAILED, NOT_A_DIRECTORY.format(path=path))
    members: list[Member] = []
    with to.writer(GZIP) as writer:
        gz = GzipWriter(writer)
        with tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            if not missing:
                for info, source in _entries(tar, path):
                    if info.isreg():
                        try:
                            with source.open("rb") as content:
                                tar.addfile(info, content)
                        except OSError as exc:
                            raise ArchiveError(
                                reasons.FILES_ARCHIVE_FAILED,
                                READ_FAILED.format(name=shown(info.name), error=exc.strerror),
                            ) from None
                    else:
                        tar.addfile(info)
                    members.append(member_of(info))
                    crashpoint(UPLOAD, MIDDLE)
        gz.close()
    archive = FilesArchive(
        directory=str(path), object=writer.result, members=tuple(members), missing=missing
    )
    log.info(
        "archived %s to %s (%d entries, %d bytes, %d gzipped)",
        path,
        archive.object.uri,
        archive.count,
        archive.total_bytes,
        archive.object.size,
    )
    return archive


def compare_members(expected: list[Member], actual: list[Member]) -> list[str]:
    """One sentence per entry that is missing, extra or different (no I/O)."""
    have = {member.name: member for member in actual}
    problems = differences(
        {member.name: member for member in expected}, have,
        "{0} is missing from the archive", "{0} is in the archive but not in the directory",
        _differs, shown=shown)
    if len(actual) != len(have):
        problems.append("the archive lists an entry more than once")
    return problems


def _differs(name: str, want: Member, have: Member) -> str | None:
    """What is different about one entry, or None."""
    if want.kind != have.kind:
        return f"{shown(name)} is a {want.kind} but archived as a {have.kind}"
    if want.size != have.size:
        return f"{shown(name)} has {want.size} bytes, {have.size} in the archive"
    if want.link != have.link:
        return f"{shown(name)} links elsewhere than in the archive"
    return None


@contextlib.contextmanager
def archived_tar(
    s3: Any, archived: ArchivedObject, corrupt: str = CORRUPT
) -> Iterator[tarfile.TarFile]:
    """An archived tar.gz opened for one streaming pass (listing it, or extracting it).

    A stream tar or gzip cannot read raises ArchiveVerificationError("ArchiveCorrupt")
    with `corrupt` ({uri}, {detail}); leaving the block normally reads the rest and checks
    size and sha256 against `archived`, so a pass that ends cleanly read the whole object.
    """
    with S3Reader(s3, archived.bucket, archived.key) as reader:
        try:
            with tarfile.open(fileobj=reader, mode="r|gz") as tar:
                yield tar
        except (tarfile.TarError, zlib.error, EOFError) as exc:
            raise ArchiveVerificationError(
                reasons.ARCHIVE_CORRUPT, corrupt.format(uri=archived.uri, detail=exc)
            ) from None
        reader.check(archived)


def read_members(s3: Any, archived: ArchivedObject) -> list[Member]:
    """The entries of an archived tar.gz, read streaming; size and sha256 are checked too."""
    with archived_tar(s3, archived) as tar:
        return [member_of(info) for info in tar]


def verify_archive(path: Path, s3: Any, archived: ArchivedObject) -> list[Member]:
    """Prove that the archive lists every entry of `path` with its size, and nothing else.

    Reads the object back from S3 (streaming), checks its size and sha256 against what was
    written, and compares names, kinds, sizes and link targets with the directory as it is
    now. Raises ArchiveVerificationError naming what differs; returns the members.
    """
    actual = read_members(s3, archived)
    expected = scan_members(Path(path))
    problems = compare_members(expected, actual)
    if problems:
        raise ArchiveVerificationError(
            reasons.FILES_ARCHIVE_MISMATCH,
            MISMATCH.format(uri=archived.uri, path=path, problems="; ".join(problems[:MAX_LISTED])),
        )
    log.info("verified %s against %s (%d entries)", archived.uri, path, len(actual))
    return actual
