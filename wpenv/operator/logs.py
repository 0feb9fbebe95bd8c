"""Log lines a platform team can read: which object, and errors only when they are errors.

kopf reports every TemporaryError as ERROR ("failed temporarily"), but most of ours are how
a pass waits for AWS (a rollout in progress, a queue slot). Those are downgraded to INFO,
so an alert on ERROR lines means trouble.

Two formats (settings.log_format):
- `json`, one object per line: time, level, logger, message and, on every line about one
  environment, `environment: {namespace, name, tenant}`. kopf's own lines name their
  object (its `k8s_ref`); ours run inside a handler, which sets the environment in a
  context variable (`about`); the tenant of a kopf line comes from the watch's inventory.
- `plain` for a terminal: kopf's object-prefixing text formatter, `[namespace/name]`.

Libraries that log request bodies at DEBUG (botocore, urllib3, the Kubernetes client)
are held at INFO, so DEBUG never writes a secret a request carried.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import Any

import kopf
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from wpenv import metrics

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
ROUTINE_SUCCESS = ("Timer 'drift' succeeded.", "Timer 'catch_up' succeeded.",
                   "Indexer 'tenants' succeeded.", "Handler 'inventory' succeeded.")
# They log whole requests and responses at DEBUG: SecretString, passwords, tokens.
BODY_LOGGERS = ("botocore", "boto3", "s3transfer", "urllib3", "kubernetes")
# kopf's record attributes that are bookkeeping, not fields of a line.
KOPF_ATTRS = ("k8s_ref", "k8s_skip", "settings")

Subject = dict[str, str]
_ABOUT: ContextVar[Subject | None] = ContextVar("wpenv_log_environment", default=None)


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


@contextlib.contextmanager
def about(namespace: str, name: str, tenant: str) -> Iterator[None]:
    """Every line logged inside (this thread or task, and threads it starts with its
    context, e.g. asyncio.to_thread) is about this environment."""
    token = _ABOUT.set({"namespace": namespace, "name": name, "tenant": tenant})
    try:
        yield
    finally:
        _ABOUT.reset(token)


class EnvironmentFields(logging.Filter):
    """Put `environment: {namespace, name, tenant}` on each record about one environment."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every record; add the field when the record is about an environment."""
        subject = _ABOUT.get()
        ref = getattr(record, "k8s_ref", None)
        if isinstance(ref, dict) and ref.get("name"):
            namespace, name = ref.get("namespace"), ref.get("name")
            if subject is None or (subject["namespace"], subject["name"]) != (namespace, name):
                tenant = metrics.INVENTORY.tenant_of(str(ref.get("uid") or ""))
                subject = {"namespace": str(namespace or ""), "name": str(name),
                           "tenant": tenant or ""}
        if subject is not None:
            record.environment = subject
        return True


class JsonLines(JsonFormatter):
    """One JSON object per line: time (UTC, RFC 3339), level, logger, message, extras."""

    def __init__(self) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",
            reserved_attrs=[*RESERVED_ATTRS, *KOPF_ATTRS],
        )

    def add_fields(
        self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        """The standard fields, with `time` first so lines sort and read naturally."""
        super().add_fields(log_record, record, message_dict)
        log_record["time"] = log_record.pop("time")
        for key in [k for k in log_record if k != "time"]:
            log_record[key] = log_record.pop(key)


def configure(level: str, routine: Iterable[str], log_format: str = "json") -> None:
    """kopf's handler at `level`, routine requeues as INFO, in the format asked for."""
    numeric = logging.getLevelName(level.upper())
    kopf.configure(
        debug=numeric == logging.DEBUG,
        quiet=isinstance(numeric, int) and numeric >= logging.WARNING,
        # kopf also takes a plain format string here; its annotation only names the enum.
        log_format=FORMAT,  # type: ignore[arg-type]
        log_prefix=log_format != "json",
    )
    root = logging.getLogger()
    root.setLevel(numeric)
    handler = root.handlers[-1]  # the stream handler kopf.configure has just added
    handler.addFilter(EnvironmentFields())
    if log_format == "json":
        handler.setFormatter(JsonLines())
    for name in BODY_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.INFO, root.level))
    logging.getLogger("kopf.objects").addFilter(RoutineRequeues(routine))
