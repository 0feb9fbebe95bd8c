"""Integration fixtures: reconcilers and the engine against the local platform, in-process.

A `make_ctx` call gives a Context for a fresh tenant id whose settings and clients come
from the platform's exported variables (AWS_ENDPOINT_URL and the WPENV_* names), the same
way the operator builds them in production.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.platform.fidelity.iam_propagation import propagation_seconds
from wpenv import engine
from wpenv.aws import SERVICES, Clients, error_code
from wpenv.engine import make_context
from wpenv.errors import PermanentError
from wpenv.reconcilers.base import Context, Resource
from wpenv.reconcilers.database import Database
from wpenv.reconcilers.db_secret import DatabaseSecret
from wpenv.settings import Settings

MakeCtx = Callable[..., Context]


@pytest.fixture(scope="session")
def settings(platform: dict[str, str]) -> Settings:
    """Operator settings read from the environment the platform exported."""
    return Settings()


@pytest.fixture(scope="session")
def clients(settings: Settings) -> Clients:
    """boto3 clients pointed at moto through AWS_ENDPOINT_URL."""
    return Clients(settings)


@pytest.fixture
def make_ctx(settings: Settings, clients: Clients) -> MakeCtx:
    """Build a Context for a new tenant (unique per call unless `tenant` is given)."""

    def build(tenant: str | None = None, **spec: Any) -> Context:
        tenant = tenant or f"t{uuid.uuid4().hex[:10]}"
        return make_context(
            namespace="it", name=tenant, spec={"tenantId": tenant, **spec},
            settings=settings, clients=clients, ids={},
        )

    return build


@pytest.fixture
def provisioned(make_ctx: MakeCtx) -> Iterator[MakeCtx]:
    """Tenants with their database secret and (unless create=False) database and user.

    The real steps, in the engine's order, so the password is the one in the secret; the
    tests of the database step and of restoring an archive both start here. All removed
    after the test.
    """
    made: list[Context] = []

    def build(tenant: str | None = None, *, create: bool = True) -> Context:
        ctx = make_ctx(tenant)
        secret = DatabaseSecret()
        secret.create(ctx, secret.observe(ctx))
        if create:
            database = Database()
            database.create(ctx, database.observe(ctx))
        made.append(ctx)
        return ctx

    yield build
    for ctx in made:
        Database().ensure_absent(ctx)
        DatabaseSecret().ensure_absent(ctx)


# Operation name prefixes that only read; everything else counts as a write.
READ_PREFIXES = ("Describe", "List", "Get", "Head", "Lookup")


@contextmanager
def aws_calls(clients: Clients) -> Iterator[list[str]]:
    """Record the AWS operations made through `clients` (botocore's own event hooks).

    Observing, not replacing: the requests still go to the emulator unchanged.
    """
    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        calls.append(str(model.name))

    made = [getattr(clients, service.replace("-", "_")) for service in SERVICES]
    for client in made:
        client.meta.events.register("before-call", record)
    try:
        yield calls
    finally:
        for client in made:
            client.meta.events.unregister("before-call", record)


def writes(calls: list[str]) -> list[str]:
    """The operations in `calls` that change something."""
    return [c for c in calls if not c.startswith(READ_PREFIXES)]


def settle(ctx: Context, resources: Sequence[Resource], timeout: float = 30.0) -> engine.Outcome:
    """Passes until one is not stopped by transient trouble, as the operator's requeues run.

    A role the previous step made is not usable by ECS for a moment (the platform's IAM
    propagation delay), so a single pass may stop short; the last pass's outcome.
    """
    deadline = time.monotonic() + timeout
    while True:
        outcome = engine.converge(ctx, resources)
        if not outcome.troubled or outcome.failure or time.monotonic() > deadline:
            return outcome
        time.sleep(0.5)


def tear_down_settled(
    ctx: Context, resources: Sequence[Resource], timeout: float = 60.0
) -> list[engine.TeardownError]:
    """The teardown, run again while transient trouble stops it, as the operator's retries do.

    A security group stays in use for a while after its service is deleted (the tasks'
    network interfaces go later); what stopped the earlier attempts is returned.
    """
    deadline = time.monotonic() + timeout
    stopped: list[engine.TeardownError] = []
    while True:
        try:
            engine.tear_down(ctx, resources)
        except engine.TeardownError as exc:
            if isinstance(engine.classify(exc.cause), PermanentError):
                raise
            if time.monotonic() > deadline:
                raise
            stopped.append(exc)
            time.sleep(0.5)
        else:
            return stopped


def until_released(call: Callable[..., Any], *args: Any, timeout: float = 60.0,
                   **kwargs: Any) -> Any:
    """`call(*args, **kwargs)`, again while EC2 answers DependencyViolation (a security group
    that the network interfaces of tasks stopped a moment ago still use)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call(*args, **kwargs)
        except ClientError as exc:
            if error_code(exc) != "DependencyViolation" or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def roll_back_settled(ctx: Context, resources: Sequence[Resource], timeout: float = 60.0) -> bool:
    """`engine.roll_back` until it finished (True), or False after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not engine.roll_back(ctx, resources, engine.Outcome()):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def role_propagated(ctx: Context) -> None:
    """Wait until ECS may use the tenant's roles, for tests that create kinds directly."""
    for key, name in (("taskRoleArn", ctx.names.task_role),
                      ("executionRoleArn", ctx.names.execution_role)):
        if not ctx.ids.get(key):
            continue
        try:
            role = ctx.clients.iam.get_role(RoleName=name)["Role"]
        except ctx.clients.iam.exceptions.NoSuchEntityException:
            continue  # a made-up ARN (a test's stand-in): nothing to wait for
        age = (datetime.now(UTC) - role["CreateDate"]).total_seconds()
        time.sleep(max(0.0, propagation_seconds() - age + 0.2))
