"""The platform's shared infrastructure: what its settings make."""

from __future__ import annotations

import pytest

from tests.platform.aws import ALB_NAMES, POOL_SIZE_ENV, alb_names


def test_the_pool_has_two_load_balancers_unless_a_size_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(POOL_SIZE_ENV, raising=False)
    assert alb_names() == ALB_NAMES
    monkeypatch.setenv(POOL_SIZE_ENV, "12")
    names = alb_names()
    assert len(names) == 12 and names[:2] == ALB_NAMES and names[-1] == "wpenv-internal-12"
