"""Deprovisioning with the real resources and archives, cut short after every step.

The finalizer may die at any point (a crash, a deploy of the operator); the next attempt
starts again from the top. Here each attempt is stopped right after step N (N = 1..8) by
the progress callback, and a fresh attempt with a lost status (no recorded ids) follows:
the last one must end with everything archived once, verified, and nothing left.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.integration.conftest import MakeCtx
from tests.integration.test_engine import _master, leftovers
from wpenv import engine
from wpenv.deprovision import STEPS, Archive, Deprovisioner
from wpenv.errors import TransientError
from wpenv.plan import archive_prefix
from wpenv.reconcilers.access_point import tenant_directory
from wpenv.reconcilers.base import Context

pytestmark = pytest.mark.e2e


class StepInterruptedError(Exception):
    """Stands for the operator dying right after a step."""


def _attempt(ctx: Context, archive: Archive, report: Any, timeout: float = 60.0) -> None:
    """A deprovisioning attempt, again while transient trouble stops it, as the finalizer's
    retries do (the security group stays in use a moment after the service is deleted)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            Deprovisioner(ctx, engine.default_resources(), archive, report).run()
        except TransientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
        else:
            return


def _ready(ctx: Context) -> None:
    resources = engine.default_resources()
    for _ in range(60):
        outcome = engine.converge(ctx, resources)
        if outcome.ready or outcome.failure:
            break
        time.sleep(0.5)
    assert outcome.ready and outcome.failure is None, outcome.conditions


def _fill(ctx: Context) -> None:
    conn = _master()
    with conn, conn.cursor() as cur:
        cur.execute(f"CREATE TABLE `{ctx.names.database}`.posts (id INT PRIMARY KEY, t TEXT)")
        cur.executemany(f"INSERT INTO `{ctx.names.database}`.posts VALUES (%s, %s)",
                        [(i, f"post {i}") for i in range(100)])
        conn.commit()
    directory = tenant_directory(ctx)
    (directory / "uploads").mkdir(parents=True, exist_ok=True)
    (directory / "uploads" / "a.bin").write_bytes(os.urandom(10_000))


def test_every_step_boundary_resumes_to_a_complete_archive(make_ctx: MakeCtx) -> None:
    ctx = make_ctx()
    _ready(ctx)
    _fill(ctx)
    archive = Archive(bucket=ctx.settings.archive_bucket,
                      prefix=archive_prefix(ctx.settings, ctx.namespace, ctx.name,
                                            datetime.now(UTC)))
    for stop_after in range(1, STEPS + 1):
        # A restart with the status lost: nothing recorded, everything found by name/tag.
        fresh = engine.make_context(ctx.namespace, ctx.name, {"tenantId": ctx.spec.tenant_id},
                                    settings=ctx.settings, clients=ctx.clients)
        seen: list[int] = []

        def report(step: int, message: str, stop: int = stop_after, log: Any = seen) -> None:
            log.append(step)
            if step == stop:
                raise StepInterruptedError(message)

        with pytest.raises(StepInterruptedError):
            _attempt(fresh, Archive(archive.bucket, archive.prefix), report)
        assert seen[-1] == stop_after

    final = engine.make_context(ctx.namespace, ctx.name, {"tenantId": ctx.spec.tenant_id},
                                settings=ctx.settings, clients=ctx.clients)
    done = Archive(archive.bucket, archive.prefix)
    _attempt(final, done, lambda step, message: None)
    assert leftovers(final) == []
    assert not tenant_directory(final).exists()

    s3 = ctx.clients.s3
    manifest = json.loads(s3.get_object(Bucket=archive.bucket,
                                        Key=f"{archive.prefix}/manifest.json")["Body"].read())
    assert manifest["database"]["tables"]["posts"]["rows"] == 100
    assert manifest["files"]["members"] >= 2  # uploads/ and uploads/a.bin
    assert set(done.locations) >= {"database", "files", "manifest"}
