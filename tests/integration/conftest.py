"""Integration fixtures: reconcilers and the engine against the local platform, in-process.

A `make_ctx` call gives a Context for a fresh tenant id whose settings and clients come
from the platform's exported variables (AWS_ENDPOINT_URL and the WPENV_* names), the same
way the operator builds them in production.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from wpenv.aws import Clients
from wpenv.engine import make_context
from wpenv.reconcilers.base import Context
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
