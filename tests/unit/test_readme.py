"""The README's user guide tables name every spec field and every reason word.

Both tables are written by hand for people; these checks make them fail to go stale: a
field added to the CRD or a reason added to `wpenv.reasons` must get its row.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wpenv import reasons
from wpenv.api.crd import build_crd

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
CELL = re.compile(r"^\| `([^`]+)` \|", re.MULTILINE)


def _section(title: str) -> str:
    """The text of one `## title` section of the README, up to the next `## `."""
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _first_cells(title: str) -> set[str]:
    """The back-quoted first cell of every table row in that section."""
    return set(CELL.findall(_section(title)))


def _fields(schema: dict[str, Any], prefix: str = "") -> Iterator[str]:
    """Every property path below an openAPIV3Schema node (`routing.pathPrefix`)."""
    for name, sub in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        yield path
        yield from _fields(sub, f"{path}.")


def _spec_schema() -> dict[str, Any]:
    """The spec's openAPIV3Schema as the models generate it (test_crd: the same as crds/)."""
    (version,) = build_crd()["spec"]["versions"]
    spec: dict[str, Any] = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return spec


def _reason_words() -> dict[str, str]:
    """Every reason constant of `wpenv.reasons`: name -> word."""
    return {
        name: value
        for name, value in vars(reasons).items()
        if name.isupper() and isinstance(value, str)
    }


def test_every_spec_field_has_a_row_in_the_manifest_table() -> None:
    fields = set(_fields(_spec_schema()))
    assert {"tenantId", "routing.pathPrefix", "identity.groups"} <= fields
    missing = sorted(fields - _first_cells("The manifest"))
    assert not missing, f"README 'The manifest' lacks rows for {missing}"


def test_the_manifest_table_names_no_field_the_crd_lacks() -> None:
    fields = set(_fields(_spec_schema()))
    extra = sorted(_first_cells("The manifest") - fields)
    assert not extra, f"README 'The manifest' names fields the CRD has not: {extra}"


@pytest.mark.parametrize("name", sorted(_reason_words()))
def test_every_reason_has_a_row_in_the_troubleshooting_table(name: str) -> None:
    word = _reason_words()[name]
    assert word in _first_cells("Troubleshooting"), f"README 'Troubleshooting' lacks {word}"


def test_the_troubleshooting_table_names_only_reasons() -> None:
    extra = sorted(_first_cells("Troubleshooting") - set(_reason_words().values()))
    assert not extra, f"README 'Troubleshooting' names words wpenv.reasons lacks: {extra}"
