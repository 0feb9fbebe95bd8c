"""Integration fixtures: reconcilers and the engine against the local platform, in-process.

A `make_ctx` call gives a Context for a fresh tenant id whose settings and clients come
from the platform's exported variables (AWS_ENDPOINT_URL and the WPENV_* names), the same
way the operator builds them in production.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from wpenv.aws import SERVICES, Clients
from wpenv.engine import make_context
from wpenv.reconcilers.base import Context
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
