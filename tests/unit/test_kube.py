"""What the Kubernetes client's errors mean to the operator (wpenv.kube), with real errors
of a real client (tests/unit/kube_wire.py)."""

from __future__ import annotations

import pytest

from tests.unit.kube_wire import answered, refused
from wpenv import kube


def test_a_refused_connection_is_unavailable_not_gone() -> None:
    error = refused()
    assert kube.unavailable(error) and not kube.gone(error)


@pytest.mark.parametrize("status", [500, 503, 504, 429])
def test_a_server_not_ready_or_throttling_is_unavailable(status: int) -> None:
    error = answered(status)
    assert kube.unavailable(error) and not kube.gone(error)


def test_not_found_is_gone() -> None:
    error = answered(404)
    assert kube.gone(error) and not kube.unavailable(error)


@pytest.mark.parametrize("status", [403, 422])
def test_a_refusal_is_neither(status: int) -> None:
    error = answered(status)
    assert not kube.unavailable(error) and not kube.gone(error)


def test_an_error_of_another_library_is_neither() -> None:
    assert not kube.unavailable(ValueError("x")) and not kube.gone(ValueError("x"))
