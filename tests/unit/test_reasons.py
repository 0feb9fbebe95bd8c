"""Reason words: one CamelCase constant each, defined in wpenv.reasons and nowhere else."""

from __future__ import annotations

import ast
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

import wpenv
from wpenv import reasons

PACKAGE = Path(wpenv.__file__).resolve().parent
SOURCE = PACKAGE / "reasons.py"
CAMEL = re.compile(r"^[A-Z][A-Za-z0-9]*[a-z][A-Za-z0-9]*$")  # MySQLClientMissing too
LOOKS_LIKE_A_REASON = re.compile(r"^[A-Z][A-Za-z0-9]+$")
UPPER_SNAKE = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$")
# The operator's errors; each takes the reason as its first argument.
ERRORS = frozenset({
    "TransientError", "PermanentError", "ArchiveError", "ArchiveVerificationError",
    "OperatorError",
})
# Other calls that carry a reason, and where: Cond(type, status, reason), Event(type,
# reason), an archive hook's Note(reason, message).
REASON_ARGUMENT = {**dict.fromkeys(ERRORS, 0), "Cond": 2, "Event": 1, "Note": 0}


def _constants() -> dict[str, str]:
    """The module's reason constants as the source assigns them, checked for shape."""
    tree = ast.parse(SOURCE.read_text())
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the docstring
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            continue
        assert isinstance(node, ast.Assign), f"line {node.lineno}: only constants belong here"
        (target,) = node.targets
        assert isinstance(target, ast.Name) and isinstance(node.value, ast.Constant)
        assert isinstance(node.value.value, str), target.id
        found[target.id] = node.value.value
    return found


def test_every_constant_is_an_upper_snake_name_for_a_camel_case_word() -> None:
    constants = _constants()
    assert len(constants) > 40
    for name, value in constants.items():
        assert UPPER_SNAKE.match(name), name
        assert CAMEL.match(value), f"{name} = {value!r} is not one CamelCase word"
        assert getattr(reasons, name) == value


def test_every_constant_has_a_comment_saying_when_it_is_used() -> None:
    lines = SOURCE.read_text().splitlines()
    for node in ast.parse(SOURCE.read_text()).body:
        if isinstance(node, ast.Assign):
            above = lines[node.lineno - 2].strip()
            assert above.startswith("# ") and not above.startswith("# ---"), (
                f"line {node.lineno}: no comment above {ast.unparse(node.targets[0])}"
            )


def test_the_words_are_unique() -> None:
    counts = Counter(_constants().values())
    assert [word for word, count in counts.items() if count > 1] == []


def test_the_module_imports_nothing_from_wpenv() -> None:
    for node in ast.walk(ast.parse(SOURCE.read_text())):
        if isinstance(node, ast.Import):
            assert all(not a.name.startswith("wpenv") for a in node.names)
        if isinstance(node, ast.ImportFrom):
            assert not (node.module or "").startswith("wpenv")


def _modules() -> Iterator[Path]:
    for path in sorted(PACKAGE.rglob("*.py")):
        if path != SOURCE:
            yield path


def _called(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def _reason_arguments(tree: ast.AST) -> Iterator[tuple[str, ast.expr]]:
    """(callee, reason argument) of every call that takes a reason."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _called(node)
        if name not in REASON_ARGUMENT:
            continue
        index = REASON_ARGUMENT[name]
        if len(node.args) > index:
            yield name, node.args[index]
        for keyword in node.keywords:
            if keyword.arg == "reason":
                yield name, keyword.value


@pytest.mark.parametrize("path", list(_modules()), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_spells_a_reason_itself(path: Path) -> None:
    literals = [
        f"line {arg.lineno}: {name}({arg.value!r}, ...)"
        for name, arg in _reason_arguments(ast.parse(path.read_text()))
        if isinstance(arg, ast.Constant)
        and isinstance(arg.value, str)
        and LOOKS_LIKE_A_REASON.match(arg.value)
    ]
    assert literals == [], "name the constant in wpenv.reasons instead"


def test_the_walk_sees_the_calls_it_checks() -> None:
    """Guard against a walk that passes because it finds nothing."""
    seen = Counter(
        name for path in _modules() for name, _arg in _reason_arguments(ast.parse(path.read_text()))
    )
    assert seen["TransientError"] > 5 and seen["PermanentError"] > 3
    assert seen["ArchiveError"] > 5 and seen["ArchiveVerificationError"] > 5
    assert seen["Cond"] > 10 and seen["Event"] > 10


def test_every_constant_is_used() -> None:
    """A word nothing writes is not a reason the operator gives; drop it instead."""
    used = {
        node.attr
        for path in _modules()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "reasons"
    }
    assert sorted(set(_constants()) - used) == []
