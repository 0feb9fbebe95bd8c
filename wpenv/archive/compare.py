"""The one comparison behind every archive check: what the original holds against what
the archive holds, keyed by table or file name, as sentences a person can act on."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

T = TypeVar("T")


def differences(
    expected: Mapping[str, T],
    actual: Mapping[str, T],
    missing: str,
    extra: str,
    differs: Callable[[str, T, T], str | None],
    *,
    shown: Callable[[str], str] = str,
) -> list[str]:
    """One sentence per key missing from `actual`, extra in it, or different (no I/O).

    `missing` and `extra` are formatted with the key, as `shown` prints it, for `{0}`;
    `differs` says what is different about one key (None when nothing is).
    """
    problems = []
    for key in sorted(set(expected) | set(actual)):
        want, have = expected.get(key), actual.get(key)
        if have is None:
            problems.append(missing.format(shown(key)))
        elif want is None:
            problems.append(extra.format(shown(key)))
        elif (problem := differs(key, want, have)) is not None:
            problems.append(problem)
    return problems
