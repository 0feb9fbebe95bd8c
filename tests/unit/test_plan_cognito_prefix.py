"""The hosted-domain prefix: valid for Cognito for every valid tenant id, stable, distinct."""

from __future__ import annotations

import re

import pytest

from tests.platform.fidelity.cognito import domain_refusal
from wpenv.api.models import DNS_LABEL
from wpenv.plan import cognito_domain_prefix, fit, names_for, without_words

TRICKY = [
    "aws", "amazon", "cognito", "a", "acme", "my-amazon-shop", "cognito32charsxxxxxxxxxxxxxxxxxx",
    "awsawsawsawsawsawsawsawsawsawsaw", "x" * 32, "a-aws-b", "aw-s", "awcognitos",
    "amazoncognito", "a--b", "0aws0", "aws-0", "9",
]


@pytest.mark.parametrize("tenant", TRICKY)
def test_every_tricky_tenant_gets_a_prefix_cognito_takes(tenant: str) -> None:
    assert re.fullmatch(DNS_LABEL, tenant) and len(tenant) <= 32  # a valid tenantId
    prefix = cognito_domain_prefix("ns", "name", tenant)
    assert domain_refusal(prefix) is None, prefix
    assert prefix == names_for("ns", "name", tenant).user_pool_domain
    assert prefix == cognito_domain_prefix("ns", "name", tenant)  # deterministic


def test_prefixes_are_distinct_even_where_the_readable_part_is_not() -> None:
    tenants = ["my-amazon-shop", "my-shop", "my-aws-shop", "aws", "amazon", "cognito"]
    prefixes = {cognito_domain_prefix("ns", "n", t) for t in tenants}
    assert len(prefixes) == len(tenants)
    assert cognito_domain_prefix("a", "n", "acme") != cognito_domain_prefix("b", "n", "acme")


def test_tenants_without_reserved_words_keep_their_old_prefix() -> None:
    for tenant in ("acme", "a--b", "x" * 32, "shop-42"):
        old = fit("wpenv-", tenant, 63, seed=f"ns/n/{tenant}")
        assert cognito_domain_prefix("ns", "n", tenant) == old


def test_readable_part() -> None:
    assert cognito_domain_prefix("ns", "n", "my-amazon-shop").startswith("wpenv-my-shop-")
    assert re.fullmatch(r"wpenv-[0-9a-f]{8}", cognito_domain_prefix("ns", "n", "aws"))
    assert without_words("awcognitos", ("aws", "cognito")) == ""


def test_many_generated_tenants_built_from_reserved_letters() -> None:
    """Ids made of the reserved words' letters, every length: each prefix is accepted."""
    import random  # noqa: PLC0415 (only this test needs it)

    rng = random.Random(10)
    letters = "awsmazoncgit-0"
    for _ in range(2000):
        length = rng.randint(1, 32)
        tenant = "".join(rng.choice(letters) for _ in range(length)).strip("-") or "a"
        assert domain_refusal(cognito_domain_prefix("ns", "n", tenant)) is None, tenant
