"""The site secret's value, without AWS: every key, fresh randomness, presence checks."""

from __future__ import annotations

from wpenv.plan import names_for
from wpenv.reconcilers import registry
from wpenv.reconcilers import site_secret as ss


def test_a_new_value_has_every_key_and_fresh_salts() -> None:
    names = names_for("ns", "shop", "acme")
    one, two = ss.new_value(names), ss.new_value(names)
    assert set(one) == set(ss.KEYS) and ss.missing_keys(one) == []
    assert all(one[k] != two[k] for k in ss.SALT_KEYS), "no two secrets share a salt"
    assert one[ss.ADMIN_PASSWORD] != two[ss.ADMIN_PASSWORD]
    assert one[ss.ADMIN_USER] == ss.ADMIN_NAME
    assert one[ss.ADMIN_EMAIL] == "wpenv-admin@acme.invalid"
    # WordPress's keys may be any characters; these stay clear of PHP and shell quoting.
    assert all(c.isalnum() or c in "-_" for k in ss.SALT_KEYS for c in one[k])


def test_missing_keys_names_empty_and_absent_ones() -> None:
    value = ss.new_value(names_for("ns", "shop", "acme"))
    value["AUTH_KEY"] = ""
    del value[ss.ADMIN_EMAIL]
    assert ss.missing_keys(value) == ["AUTH_KEY", ss.ADMIN_EMAIL]


def test_declarations_and_its_place_before_the_execution_role() -> None:
    kind = ss.SiteSecret()
    assert kind.ids == ("siteSecretArn",) and kind.gone == {"ResourceNotFoundException"}
    assert kind.retainable and kind.group == "Compute"
    assert ss.SiteSecret.name_of(names_for("ns", "x", "acme")) == "wpenv/acme/wordpress"
    order = [k.kind for k in registry.KINDS]
    assert order.index("SiteSecret") < order.index("ExecutionRole")
