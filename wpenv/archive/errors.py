"""The two errors the archive library raises on purpose.

Messages name tables, keys and file names but never a password or a line of the
tenant's data, so the finalizer can put them in a condition or an Event as they are.
AWS and MySQL errors that are not about the archive itself (throttling, an unreachable
server) propagate unchanged, so the caller can classify them with `wpenv.aws.is_transient`
the way the engine already does.
"""

from __future__ import annotations

from wpenv.errors import TransientError


class ArchiveError(TransientError):
    """Archiving (or restoring) did not complete; nothing may be deleted on its strength.

    Transient: the finalizer tries again with backoff, and a person can look meanwhile.
    """


class ArchiveVerificationError(ArchiveError):
    """The archive was written but does not hold what it should: do not delete the source."""
