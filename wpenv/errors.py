"""The two ways a step can fail, shared by every layer.

Every error the operator raises on purpose is one of these: worth another pass later
(`TransientError`), or in need of a person (`PermanentError`). The engine turns anything
else (a botocore or pymysql error) into one of them (`wpenv.engine.classify`), so a
condition always has a CamelCase reason and a message that never holds a secret.
Reason words live in `wpenv.reasons`.
"""

from __future__ import annotations


class OperatorError(Exception):
    """A failure with a condition reason (CamelCase) and a message safe to show anyone."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class TransientError(OperatorError):
    """Worth another pass later (throttled, not reachable, not ready yet)."""


class PermanentError(OperatorError):
    """Will not succeed until a person changes something: roll back and report Failed."""
