"""Routine requeues are INFO; real trouble stays ERROR."""

from __future__ import annotations

import logging

from wpenv.operator.logs import RoutineRequeues


def _record(message: str, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord("kopf.objects", level, __file__, 1, message, None, None)


def test_routine_requeues_are_info_and_failures_stay_errors() -> None:
    routine = RoutineRequeues(["Converging", "Queued for a provisioning slot"])
    waiting = _record("Handler 'reconcile/spec' failed temporarily: Converging")
    assert routine.filter(waiting) and waiting.levelno == logging.INFO
    assert waiting.levelname == "INFO"
    trouble = _record("Handler 'on_delete' failed temporarily: the dump did not verify")
    assert routine.filter(trouble) and trouble.levelno == logging.ERROR
    other = _record("Handler 'reconcile' failed permanently: Converging")
    assert routine.filter(other) and other.levelno == logging.ERROR
