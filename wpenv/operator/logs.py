"""Log lines a platform team can read: which object, and errors only when they are errors.

kopf reports every TemporaryError as ERROR ("failed temporarily"), but most of ours are how
a pass waits for AWS (a rollout in progress, a queue slot). Those are downgraded to INFO,
so an alert on ERROR lines means trouble. Every line about an object carries its
`[namespace/name]` prefix (kopf's own prefixing formatter).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import kopf

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
ROUTINE_SUCCESS = ("Timer 'drift' succeeded.", "Timer 'catch_up' succeeded.",
                   "Indexer 'tenants' succeeded.")


class RoutineRequeues(logging.Filter):
    """Turn kopf's "failed temporarily: <routine reason>" ERRORs into INFO records, and
    its "Timer/Indexer ... succeeded" lines (one per object per tick) into DEBUG ones."""

    def __init__(self, reasons: Iterable[str]) -> None:
        super().__init__()
        self.endings = tuple(f"failed temporarily: {reason}" for reason in reasons)

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every record; only lower the level of routine ones."""
        message = record.getMessage()
        if record.levelno == logging.ERROR and message.endswith(self.endings):
            record.levelno, record.levelname = logging.INFO, "INFO"
        elif record.levelno == logging.INFO and message.endswith(ROUTINE_SUCCESS):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


def configure(level: str, routine: Iterable[str]) -> None:
    """kopf's object-prefixing formatter at `level`, with routine requeues as INFO."""
    numeric = logging.getLevelName(level.upper())
    kopf.configure(
        debug=numeric == logging.DEBUG,
        quiet=isinstance(numeric, int) and numeric >= logging.WARNING,
        # kopf also takes a plain format string here; its annotation only names the enum.
        log_format=FORMAT,  # type: ignore[arg-type]
        log_prefix=True,
    )
    logging.getLogger().setLevel(numeric)
    logging.getLogger("kopf.objects").addFilter(RoutineRequeues(routine))
