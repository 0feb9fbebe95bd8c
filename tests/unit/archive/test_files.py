"""Walking a directory and describing it as the archive does, on a local temp directory."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

from wpenv.archive.files import Member, compare_members, member_of, scan_members, shown, walk


def _tree(root: Path) -> None:
    (root / "b" / "c").mkdir(parents=True)
    (root / "a.txt").write_text("12345")
    (root / "b" / "c" / "d.txt").write_text("")
    (root / "b" / "z.txt").write_text("zz")
    (root / "link").symlink_to("b")
    (root / "abs").symlink_to("/etc/passwd")
    os.link(root / "a.txt", root / "hard")
    os.mkfifo(root / "fifo")


def test_walk_lists_directories_before_their_contents_and_never_follows_links(
    tmp_path: Path,
) -> None:
    _tree(tmp_path)
    names = [name for name, _ in walk(tmp_path)]
    assert names == ["a.txt", "abs", "b", "fifo", "hard", "link", "b/c", "b/z.txt", "b/c/d.txt"]


def test_scan_members_describes_each_kind(tmp_path: Path) -> None:
    _tree(tmp_path)
    members = {m.name: m for m in scan_members(tmp_path)}
    assert members["a.txt"] == Member("a.txt", "file", 5)
    assert members["hard"] == Member("hard", "hardlink", 0, "a.txt")
    assert members["b"] == Member("b", "dir", 0)
    assert members["link"] == Member("link", "symlink", 0, "b")
    assert members["abs"] == Member("abs", "symlink", 0, "/etc/passwd")
    assert members["fifo"] == Member("fifo", "special", 0)
    assert members["b/c/d.txt"] == Member("b/c/d.txt", "file", 0)
    assert scan_members(tmp_path / "absent") == []


def test_member_of_matches_what_tarfile_reads_back(tmp_path: Path) -> None:
    _tree(tmp_path)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, path in walk(tmp_path):
            tar.add(path, arcname=name, recursive=False)
    buffer.seek(0)
    with tarfile.open(fileobj=buffer, mode="r") as tar:
        assert [member_of(info) for info in tar] == scan_members(tmp_path)


def test_compare_members_names_every_difference() -> None:
    expected = [
        Member("a", "file", 1),
        Member("b", "file", 2),
        Member("c", "dir", 0),
        Member("l", "symlink", 0, "x"),
    ]
    actual = [
        Member("a", "file", 1),
        Member("b", "file", 3),
        Member("c", "file", 0),
        Member("l", "symlink", 0, "y"),
        Member("extra", "file", 0),
    ]
    assert compare_members(expected, actual) == [
        "b has 2 bytes, 3 in the archive",
        "c is a dir but archived as a file",
        "extra is in the archive but not in the directory",
        "l links elsewhere than in the archive",
    ]
    assert compare_members(expected, expected[:3]) == ["l is missing from the archive"]
    assert compare_members(expected, [*expected, expected[0]]) == [
        "the archive lists an entry more than once"
    ]


def test_names_that_are_not_utf8_can_still_be_shown() -> None:
    name = b"caf\xe9.txt".decode("utf-8", "surrogateescape")
    assert shown(name) == "caf\\udce9.txt"
