"""No function in wpenv/ is longer than 60 lines: a longer one does more than one thing."""

from __future__ import annotations

import ast
from pathlib import Path

LIMIT = 60
PACKAGE = Path(__file__).resolve().parents[2] / "wpenv"


def test_no_function_in_the_package_is_longer_than_the_limit() -> None:
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > LIMIT:
                    long.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}")
    assert long == [], f"functions over {LIMIT} lines: {long}"
