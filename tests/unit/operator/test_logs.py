"""Routine requeues are INFO, real trouble stays ERROR; JSON lines name the environment."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from moto import mock_aws

from wpenv import engine
from wpenv.aws import Clients
from wpenv.engine import make_context
from wpenv.operator import logs, observe
from wpenv.operator.logs import RoutineRequeues
from wpenv.reconcilers.db_secret import DatabaseSecret
from wpenv.settings import Settings

CAMEL = re.compile(r"[A-Z][A-Za-z0-9]{0,127}")  # an Event reason: UpperCamelCase, <= 128


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


# --- JSON lines ------------------------------------------------------------------------


@pytest.fixture
def lines(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The operator's logging as configured at start-up (JSON, DEBUG), into a buffer."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in (*logs.BODY_LOGGERS, "kopf.objects")}
    filters = logging.getLogger("kopf.objects").filters[:]
    buffer = io.StringIO()
    logs.configure("DEBUG", ["Converging"], "json")
    handler = root.handlers[-1]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    try:
        yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        logging.getLogger("kopf.objects").filters[:] = filters


def test_a_line_about_an_environment_names_it_in_json(
    lines: Callable[[], list[dict[str, Any]]],
) -> None:
    observe.watched("ADDED", {"metadata": {"namespace": "shop", "name": "acme", "uid": "u-log"},
                              "spec": {"tenantId": "acme-ltd"}})
    try:
        with logs.about("shop", "acme", "acme-ltd"):
            logging.getLogger("wpenv.operator.handlers").info("Drift corrected in %s", "shop/acme")
        # kopf's own line about the object: its reference, and the tenant from the inventory
        kopf_ref = {"namespace": "shop", "name": "acme", "uid": "u-log", "kind": "X"}
        logging.getLogger("kopf.objects").error(
            "Handler 'reconcile' failed temporarily: Converging", extra={"k8s_ref": kopf_ref})
        logging.getLogger("wpenv.orphans.scan").warning("orphan scan: 0 orphaned")
    finally:
        observe.watched("DELETED", {"metadata": {"uid": "u-log"}})
    ours, kopfs, general = lines()
    subject = {"namespace": "shop", "name": "acme", "tenant": "acme-ltd"}
    assert ours == {"time": ours["time"], "level": "INFO", "logger": "wpenv.operator.handlers",
                    "message": "Drift corrected in shop/acme", "environment": subject}
    assert next(iter(ours)) == "time"
    assert datetime.fromisoformat(ours["time"]).tzinfo is not None
    assert kopfs["environment"] == subject and kopfs["level"] == "INFO", "routine: INFO"
    assert "k8s_ref" not in kopfs and "settings" not in kopfs
    assert "environment" not in general and general["level"] == "WARNING"


def test_a_pass_that_makes_a_secret_logs_and_posts_none_of_it(
    lines: Callable[[], list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    settings = Settings(db_host="db.example.internal")
    with mock_aws():
        clients = Clients(settings)
        ctx = make_context("shop", "acme", {"tenantId": "acme"}, settings=settings,
                           clients=clients, ids={})
        with logs.about("shop", "acme", "acme"):
            outcome = engine.converge(ctx, [DatabaseSecret()], attempt=0, may_roll_back=False)
        assert outcome.ready and outcome.events, "the pass made the secret and said so"
        value = clients.secretsmanager.get_secret_value(SecretId=ctx.names.db_secret)
        password = json.loads(value["SecretString"])["password"]
        written = lines()
        assert written, "the pass logged something"
        assert all(password not in json.dumps(line) for line in written)
        for event in outcome.events:  # as kopf.event posts them: a core/v1 Event's fields
            assert event.type in ("Normal", "Warning") and CAMEL.fullmatch(event.reason)
            assert len(event.message) <= 1024 and password not in event.message
        assert all(password not in c.message for c in outcome.conditions)
        # The capture does see what botocore would write at DEBUG: held back, not lost.
        logging.getLogger("botocore").setLevel(logging.DEBUG)
        clients.secretsmanager.put_secret_value(SecretId=ctx.names.db_secret,
                                                SecretString="canary-" + password)
        assert any("canary-" in json.dumps(line) for line in lines())


def test_plain_text_for_a_terminal() -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logs.configure("INFO", [], "plain")
        buffer = io.StringIO()
        handler = root.handlers[-1]
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(buffer)
        ref = {"namespace": "shop", "name": "acme", "uid": "u-plain"}
        logging.getLogger("kopf.objects").info("Handler 'reconcile' succeeded.",
                                               extra={"k8s_ref": ref})
        (line,) = buffer.getvalue().splitlines()
        assert line.endswith("INFO kopf.objects: [shop/acme] Handler 'reconcile' succeeded.")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
