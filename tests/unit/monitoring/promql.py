"""The metric names a PromQL expression reads, and the names the operator exports.

No PromQL parser is at hand in Python, and promtool checks syntax but does not list
names, so this strips what cannot be a metric name (strings, label matchers, ranges,
grouping clauses, function calls, keywords, numbers) and keeps the identifiers left.
The syntax itself is checked by promtool, in the tests that use this.
"""

from __future__ import annotations

import re

from prometheus_client import REGISTRY

import wpenv.metrics  # noqa: F401  (registers every metric the operator exports)

KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset", "inf", "nan",
}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
}


def metric_names(expr: str) -> set[str]:
    """Every metric name `expr` selects."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for found in re.finditer(r"(?<![\w.$])[A-Za-z_:][\w:]*", text):
        after = text[found.end():].lstrip()
        if after.startswith("(") or found.group(0).lower() in KEYWORDS:
            continue
        names.add(found.group(0))
    return names


def exported() -> set[str]:
    """Every sample name the operator's registry can expose, per family type."""
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return names
