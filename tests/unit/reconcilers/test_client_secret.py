"""The client secret's value and the secrets' name patterns, without AWS."""

from __future__ import annotations

from wpenv.reconcilers import client_secret as cs
from wpenv.reconcilers import secret_store as store
from wpenv.reconcilers.db_secret import DatabaseSecret


def test_value_holds_the_client_id_and_secret_under_the_keys_ecs_reads() -> None:
    value = cs.desired_value({"ClientId": "4l1ent1d", "ClientSecret": "s3cr3t", "x": 1})
    assert value == {"client_id": "4l1ent1d", "client_secret": "s3cr3t"}


def test_messages_have_no_room_for_a_value() -> None:
    shared = (store.STALE_TAGS, store.SCHEDULED, store.DELETION_PENDING)
    for message in (cs.STALE_VALUE, cs.STALE_UNKNOWN, *shared):
        assert "{value" not in message and "{secret" not in message


def test_each_kind_lists_only_names_of_its_own_shape() -> None:
    prefix, pattern = store.name_pattern(cs.ClientSecret.name_of)
    _, database = store.name_pattern(DatabaseSecret.name_of)
    assert prefix == "wpenv/"
    assert pattern.fullmatch("wpenv/acme-corp/oidc-client")
    assert database.fullmatch("wpenv/acme-corp/database")
    for other in ("wpenv/acme/database", "wpenv/acme/oidc-client-old", "wpenv//oidc-client",
                  "other/acme/oidc-client", "wpenv/a/b/oidc-client"):
        assert not pattern.fullmatch(other)
    assert not database.fullmatch("wpenv/acme/oidc-client")


def test_both_secrets_declare_their_own_status_key_and_are_retainable() -> None:
    client, database = cs.ClientSecret(), DatabaseSecret()
    assert client.ids == ("clientSecretArn",)
    assert database.ids == ("dbSecretArn", "dbSecretVersion")
    assert client.gone == database.gone == frozenset({"ResourceNotFoundException"})
    assert client.retainable and database.retainable
    assert client.needs == ("UserPoolClient",) and database.needs == ()
