"""The two errors the archive library raises on purpose.

Messages name tables, keys and file names but never a password or a line of the
tenant's data, so the finalizer can put them in a condition or an Event as they are.
AWS and MySQL errors that are not about the archive itself (throttling, an unreachable
server) propagate unchanged, so the caller can classify them with `wpenv.aws.is_transient`
the way the engine already does.
"""

from __future__ import annotations


class ArchiveError(Exception):
    """Archiving (or restoring) did not complete; nothing may be deleted on its strength.

    `reason` is a CamelCase word for a condition, like the engine's errors have.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class ArchiveVerificationError(ArchiveError):
    """The archive was written but does not hold what it should: do not delete the source."""
