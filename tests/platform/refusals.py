"""The end-of-session summary of the error answers the platform gave (journal.py counts).

The test session reads the counts once, when it stops its platform, and prints them in
pytest's terminal summary, so a run reports how often the strict platform said no:

    platform refusals: 12 (cognito InvalidParameterException: 9, elbv2 TooManyRules: 3)
    injected faults: 4 (InternalFailure: 3, ServiceUnavailable: 1)
    throttles: 7 (ThrottlingException: 7)
    other error answers: 31 (404: 28, 400: 3)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

# Label prefix (journal.REFUSED_BY's first word, or "error") -> the summary line's name.
KINDS = {
    "fidelity": "platform refusals",
    "fault": "injected faults",
    "throttle": "throttles",
    "error": "other error answers",
}


def summary(counts: Mapping[str, int]) -> list[str]:
    """One line per kind, the total then each code by count (most first); always all four."""
    by_kind: dict[str, Counter[str]] = {kind: Counter() for kind in KINDS}
    for label, count in counts.items():
        kind, _, rest = label.partition(" ")
        by_kind.setdefault(kind, Counter())[rest or kind] += count
    lines = []
    for kind, codes in by_kind.items():
        ranked = sorted(codes.items(), key=lambda item: (-item[1], item[0]))
        detail = ", ".join(f"{code}: {n}" for code, n in ranked)
        name = KINDS.get(kind, kind)
        lines.append(f"{name}: {sum(codes.values())}" + (f" ({detail})" if detail else ""))
    return lines
