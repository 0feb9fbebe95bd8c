"""Each environment's periodic checks run at a moment of its own: spread, and fixed."""

from __future__ import annotations

import uuid

from wpenv.operator.timing import offset, until_turn


def test_a_thousand_environments_spread_over_the_interval() -> None:
    interval = 600.0
    moments = sorted(offset(str(uuid.uuid4()), interval) for _ in range(1000))
    assert all(0 <= m < interval for m in moments)
    per_second = [0] * int(interval)
    for m in moments:
        per_second[int(m)] += 1
    assert max(per_second) <= 10, "never a crowd in one second (about 1.7 on average)"
    per_minute = [sum(per_second[i:i + 60]) for i in range(0, 600, 60)]
    assert min(per_minute) >= 60 and max(per_minute) <= 140, per_minute


def test_the_moment_is_fixed_by_the_uid_across_restarts() -> None:
    uid = "0b7c4c2e-4d0f-4b7e-9a55-2f6a3c2d9e10"
    assert offset(uid, 600) == offset(uid, 600)
    assert offset(uid, 600) != offset("another", 600)
    now = 1_800_000_000.0
    wait = until_turn(uid, 600, now)
    assert 0 <= wait < 600
    assert (now + wait) % 600 == offset(uid, 600) % 600 or abs(
        (now + wait) % 600 - offset(uid, 600)) < 1e-6
    # A later start (a restart) waits for the same wall-clock moment, not a new one.
    assert abs((until_turn(uid, 600, now + 123) + 123) % 600 - wait) < 1e-6
