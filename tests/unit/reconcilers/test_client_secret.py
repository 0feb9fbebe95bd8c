"""The client secret's value, without AWS."""

from __future__ import annotations

from wpenv.reconcilers import client_secret as cs
from wpenv.reconcilers import secret_store as store


def test_value_holds_the_client_id_and_secret_under_the_keys_ecs_reads() -> None:
    value = cs.desired_value({"ClientId": "4l1ent1d", "ClientSecret": "s3cr3t", "x": 1})
    assert value == {"client_id": "4l1ent1d", "client_secret": "s3cr3t"}


def test_messages_have_no_room_for_a_value() -> None:
    shared = (store.STALE_TAGS, store.SCHEDULED, store.DELETION_PENDING)
    for message in (cs.STALE_VALUE, cs.STALE_UNKNOWN, *shared):
        assert "{value" not in message and "{secret" not in message
