"""The tenant's site secret (WordPress keys, salts, admin) against the platform's moto.

Created once with every key; observed up to date; a secret lacking keys gets only the
missing ones, and every present value (a salt signed-in users depend on, the installed
admin's password) is kept. No value shows in an observation.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import MakeCtx
from wpenv.aws import Clients
from wpenv.reconcilers.base import MISSING, Context
from wpenv.reconcilers.site_secret import KEYS, SALT_KEYS, SiteSecret

pytestmark = pytest.mark.e2e


@pytest.fixture
def ctx(make_ctx: MakeCtx) -> Iterator[Context]:
    """A fresh tenant whose site secret is deleted afterwards."""
    context = make_ctx()
    yield context
    SiteSecret().ensure_absent(context)


def _value(clients: Clients, arn: str) -> dict[str, Any]:
    found = clients.secretsmanager.get_secret_value(SecretId=arn)["SecretString"]
    value: dict[str, Any] = json.loads(found)
    return value


def test_created_with_every_key_distinct_and_kept_on_adoption(
    ctx: Context, clients: Clients
) -> None:
    secret = SiteSecret()
    secret.create(ctx, MISSING)
    arn = ctx.ids["siteSecretArn"]
    assert clients.secretsmanager.describe_secret(SecretId=arn)["Name"] == (
        f"wpenv/{ctx.names.tenant}/wordpress")
    value = _value(clients, arn)
    assert set(value) == set(KEYS)
    assert len({value[k] for k in SALT_KEYS}) == len(SALT_KEYS), "each salt its own"
    assert all(len(value[k]) == 64 for k in SALT_KEYS)
    observed = secret.observe(ctx)
    assert observed.up_to_date, observed.detail
    assert not any(v in repr(observed) for v in value.values())

    secret.create(ctx, secret.observe(ctx))  # a second pass adopts: nothing changes
    assert _value(clients, arn) == value


def test_missing_keys_are_added_and_present_ones_kept(ctx: Context, clients: Clients) -> None:
    secret = SiteSecret()
    secret.create(ctx, MISSING)
    arn = ctx.ids["siteSecretArn"]
    before = _value(clients, arn)
    partial = {k: v for k, v in before.items() if k not in ("NONCE_SALT", "admin_email")}
    clients.secretsmanager.put_secret_value(SecretId=arn, SecretString=json.dumps(partial))
    observed = secret.observe(ctx)
    assert not observed.up_to_date
    assert "NONCE_SALT" in observed.detail and "admin_email" in observed.detail
    assert not any(v in observed.detail for v in before.values()), "names only"
    secret.update(ctx, observed)
    after = _value(clients, arn)
    assert set(after) == set(KEYS)
    assert {k: after[k] for k in partial} == partial, "present values are kept"
    assert secret.observe(ctx).up_to_date
