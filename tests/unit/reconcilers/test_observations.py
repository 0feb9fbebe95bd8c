"""The shared observation cache: TTL, invalidation on write, misses read directly, batching."""

from __future__ import annotations

import collections
import copy
import json
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from wpenv.aws import Clients
from wpenv.engine import make_context
from wpenv.reconcilers.base import Context, Observation, Resource
from wpenv.reconcilers.observations import Observations
from wpenv.reconcilers.secret_store import secret_values
from wpenv.reconcilers.service import Service
from wpenv.settings import Settings

OWNER = "Kind:ns/acme"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Source:
    """A bulk listing and a direct read that count their calls."""

    def __init__(self, items: dict[str, Any]) -> None:
        self.items = dict(items)
        self.bulk_calls = 0
        self.direct_calls: list[str] = []

    def bulk(self) -> dict[str, Any]:
        self.bulk_calls += 1
        return dict(self.items)

    def direct(self, key: str) -> Any:
        self.direct_calls.append(key)
        return self.items.get(key)


def look(cache: Observations, source: Source, key: str, owner: str = OWNER, **kw: Any) -> Any:
    return cache.lookup(owner, "api", "scope", key, bulk=source.bulk,
                        direct=lambda: source.direct(key), **kw)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_one_listing_serves_every_environment_until_the_ttl(clock: Clock) -> None:
    cache = Observations(100, clock=clock)
    source = Source({"a": 1, "b": 2})
    assert look(cache, source, "a", "Kind:ns/a") == 1
    assert look(cache, source, "b", "Kind:ns/b") == 2
    assert (source.bulk_calls, source.direct_calls) == (1, [])
    clock.now += 99
    source.items["a"] = 10
    assert look(cache, source, "a", "Kind:ns/a") == 1, "served within the TTL"
    clock.now += 1
    assert look(cache, source, "a", "Kind:ns/a") == 10, "listed again after the TTL"
    assert source.bulk_calls == 2


def test_an_eager_look_uses_a_live_listing_but_never_loads_one(clock: Clock) -> None:
    cache = Observations(100, clock=clock)
    source = Source({"a": 1, "b": 2})
    assert look(cache, source, "a", eager=True) == 1
    assert (source.bulk_calls, source.direct_calls) == (0, ["a"]), "no listing: read alone"
    assert look(cache, source, "b", "Kind:ns/b") == 2  # a drift pass loads the listing
    assert look(cache, source, "b", "Kind:ns/b", eager=True) == 2
    assert (source.bulk_calls, source.direct_calls) == (1, ["a"]), "the live listing serves"
    clock.now += 100
    source.items["b"] = 20
    assert look(cache, source, "b", "Kind:ns/b", eager=True) == 20, "expired: read, not loaded"
    assert (source.bulk_calls, source.direct_calls) == (1, ["a", "b"])


def test_a_miss_is_always_read_directly_and_never_kept(clock: Clock) -> None:
    cache = Observations(100, clock=clock)
    source = Source({"a": 1})
    assert look(cache, source, "new") is None
    assert look(cache, source, "new") is None
    assert source.direct_calls == ["new", "new"], "'not there' comes only from a direct read"
    source.items["new"] = 3  # created by someone since the listing
    assert look(cache, source, "new") == 3
    assert source.bulk_calls == 1


def test_a_write_makes_the_next_observe_read_directly(clock: Clock) -> None:
    cache = Observations(100, clock=clock)
    source = Source({"a": 1})
    assert look(cache, source, "a") == 1
    clock.now += 1
    source.items["a"] = 2
    cache.changed(OWNER)
    clock.now += 1
    assert look(cache, source, "a") == 2, "the listing is older than the write"
    assert look(cache, source, "a") == 2
    assert source.direct_calls == ["a"], "the direct read is then kept for the TTL"
    assert look(cache, source, "a", "Kind:ns/other") == 1, "another environment: the listing"


def test_a_value_still_moving_is_read_directly(clock: Clock) -> None:
    cache = Observations(100, clock=clock)
    source = Source({"a": {"state": "creating"}})

    def settled(value: Any) -> bool:
        return bool(value["state"] == "available")

    assert look(cache, source, "a", settled=settled) == {"state": "creating"}
    source.items["a"] = {"state": "available"}
    assert look(cache, source, "a", settled=settled) == {"state": "available"}
    assert source.direct_calls == ["a", "a"]
    assert look(cache, source, "a", settled=settled) == {"state": "available"}
    assert source.direct_calls == ["a", "a"], "settled: kept"


def test_kept_entries_last_until_their_owner_writes(clock: Clock) -> None:
    cache = Observations(100, clock=clock)
    cache.keep(OWNER, "pool", "ACTIVE")
    clock.now += 1000
    assert cache.kept(OWNER, "pool") == "ACTIVE"
    cache.changed(OWNER)
    assert cache.kept(OWNER, "pool") is None


def test_each_reads_only_the_keys_it_does_not_hold_until_the_ttl(clock: Clock) -> None:
    cache = Observations(100, clock=clock)
    asked: list[list[str]] = []

    def load(keys: list[str]) -> dict[str, str]:
        asked.append(keys)
        return {k: k.upper() for k in keys if k != "gone"}

    assert cache.each("tags", ["a", "b"], load) == {"a": "A", "b": "B"}
    assert cache.each("tags", ["a", "b", "c", "gone"], load) == {"a": "A", "b": "B", "c": "C"}
    assert asked == [["a", "b"], ["c", "gone"]], "one call for what is new; a miss not held"
    clock.now += 100
    cache.each("tags", ["a"], load)
    assert asked[-1] == ["a"], "read again after the TTL"
    off = Observations(0, clock=clock)
    off.each("tags", ["a"], load)
    off.each("tags", ["a"], load)
    assert asked[-2:] == [["a"], ["a"]], "off: every call reads"


def test_a_directory_is_listed_once_per_ttl_and_follows_our_own_writes(clock: Clock) -> None:
    cache = Observations(10, clock=clock)
    source = Source({"a": 1})
    assert cache.listing("pools", source.bulk) == {"a": 1}
    assert cache.listed("pools", "b", 2) == 2
    source.items["c"] = 3  # someone else's, made after the listing
    assert cache.listing("pools", source.bulk) == {"a": 1, "b": 2}, "ours shows at once"
    assert cache.unlisted("pools", "a") == 1
    assert cache.listing("pools", source.bulk) == {"b": 2}
    assert source.bulk_calls == 1
    clock.now += 10
    assert cache.listing("pools", source.bulk) == {"a": 1, "c": 3}, "theirs within the TTL"
    assert source.bulk_calls == 2


def test_an_unknown_outcome_makes_the_directory_list_again(clock: Clock) -> None:
    cache = Observations(10, clock=clock)
    source = Source({"a": 1})
    cache.listing("pools", source.bulk)
    cache.relist("pools")
    source.items["b"] = 2
    assert cache.listing("pools", source.bulk) == {"a": 1, "b": 2}
    assert source.bulk_calls == 2


def test_a_directory_not_held_is_not_made_up_by_a_write(clock: Clock) -> None:
    cache = Observations(10, clock=clock)
    assert (cache.listed("pools", "b", 2), cache.unlisted("pools", "b")) == (None, None)
    off = Observations(0, clock=clock)
    source = Source({"a": 1})
    off.listing("pools", source.bulk)
    off.listing("pools", source.bulk)
    assert source.bulk_calls == 2, "off: every look lists"


def test_off_means_every_lookup_reads_directly(clock: Clock) -> None:
    cache = Observations(0, clock=clock)
    source = Source({"a": 1})
    assert look(cache, source, "a") == 1
    assert look(cache, source, "a") == 1
    cache.keep(OWNER, "k", 1)
    assert (source.bulk_calls, source.direct_calls, cache.kept(OWNER, "k")) == (0, ["a", "a"],
                                                                                None)


def test_old_writes_and_reads_are_forgotten(clock: Clock) -> None:
    cache = Observations(10, clock=clock)
    source = Source({"a": 1})
    for index in range(50):
        cache.changed(f"Kind:ns/{index}")
        look(cache, source, "a", f"Kind:ns/{index}")
    clock.now += 11
    look(cache, source, "a")
    assert "fresh=0" in repr(cache) or "fresh=1" in repr(cache)
    assert len(cache._written) == 0


class _Writer(Resource, group="Storage", gone={"NotFound"}):
    """A kind whose create writes nothing but must still invalidate."""

    def create(self, ctx: Context, observed: Observation) -> None:
        raise RuntimeError("failed half-way")


def test_every_write_of_a_kind_marks_it_changed_even_when_it_fails(clock: Clock) -> None:
    cache = Observations(100, clock=clock)
    ctx = make_context("ns", "acme", {"tenantId": "acme"}, settings=Settings(), clients=None)
    ctx.observations = cache
    source = Source({"a": 1})
    assert look(cache, source, "a", ctx.owner("_Writer")) == 1
    clock.now += 1
    with pytest.raises(RuntimeError):
        _Writer().create(ctx, Observation(exists=False))
    clock.now += 1
    look(cache, source, "a", ctx.owner("_Writer"))
    assert source.direct_calls == ["a"]
    clock.now += 1
    _Writer().delete(ctx, Observation(exists=False))  # the base's delete, inherited
    clock.now += 1
    look(cache, source, "a", ctx.owner("_Writer"))
    assert source.direct_calls == ["a", "a"]


@pytest.fixture
def clients() -> Iterator[tuple[Clients, collections.Counter[str]]]:
    with mock_aws():
        settings = Settings(region="us-east-1")
        session = boto3.session.Session(region_name="us-east-1")
        calls: collections.Counter[str] = collections.Counter()
        session.events.register("before-call", lambda model, **_: calls.update([model.name]))
        yield Clients(settings, session=session), calls


def test_services_are_described_ten_at_a_time(
    clients: tuple[Clients, collections.Counter[str]],
) -> None:
    aws, calls = clients
    aws.ecs.create_cluster(clusterName="wpenv")
    arn = aws.ecs.register_task_definition(
        family="f", containerDefinitions=[{"name": "c", "image": "nginx", "memory": 64}]
    )["taskDefinition"]["taskDefinitionArn"]
    for index in range(25):
        aws.ecs.create_service(cluster="wpenv", serviceName=f"s{index}", taskDefinition=arn,
                               desiredCount=0)
    calls.clear()
    services = Service().cluster_services(aws, "wpenv")
    assert len(services) == 25
    assert calls["DescribeServices"] == 3, "25 services: 10 + 10 + 5"


def test_secret_values_are_read_twenty_at_a_time(
    clients: tuple[Clients, collections.Counter[str]],
) -> None:
    aws, calls = clients
    arns = [aws.secretsmanager.create_secret(Name=f"wpenv/t{index}/database",
                                             SecretString=json.dumps({"n": index}))["ARN"]
            for index in range(45)]
    calls.clear()
    values = secret_values(aws, arns)
    assert calls["BatchGetSecretValue"] == 3, "45 secrets: 20 + 20 + 5"
    assert {json.loads(v)["n"] for v in values.values()} == set(range(45))


def test_every_reader_gets_a_copy_of_its_own() -> None:
    """Held values are pickled: what one pass changes in its answer, no other pass sees."""
    clock = Clock()
    obs = Observations(ttl=60, clock=clock)
    moment = datetime(2026, 12, 2, 18, 0, tzinfo=UTC)
    source = Source({"a": {"Tags": [{"Key": "k"}], "CreatedDate": moment}})
    first = look(obs, source, "a")
    first["Tags"].append({"Key": "mine"})
    again = look(obs, source, "a")
    assert again == {"Tags": [{"Key": "k"}], "CreatedDate": moment}
    assert source.bulk_calls == 1 and source.direct_calls == []
    obs.keep(OWNER, "rev", {"containerDefinitions": [{"name": "wordpress"}]})
    obs.kept(OWNER, "rev")["containerDefinitions"].clear()
    assert obs.kept(OWNER, "rev") == {"containerDefinitions": [{"name": "wordpress"}]}
    tags = obs.each("tags", ["r"], lambda keys: {k: [{"Key": "t"}] for k in keys})
    tags["r"].clear()
    assert obs.each("tags", ["r"], lambda keys: {}) == {"r": [{"Key": "t"}]}


def test_a_value_that_cannot_be_pickled_is_held_as_it_is() -> None:
    obs = Observations(ttl=60, clock=Clock())
    value = {"call": lambda: 1}
    obs.keep(OWNER, "fn", value)
    assert obs.kept(OWNER, "fn") is value


def test_a_held_answer_takes_a_fraction_of_its_parsed_size() -> None:
    """What the cache holds of 100 parsed answers is a small part of the answers."""
    answers = {f"arn:{i}": {"containerDefinitions": [
        {"name": "wordpress", "environment": [{"name": f"N{j}", "value": f"v{i}-{j}"}
                                              for j in range(20)],
         "registeredAt": datetime(2026, 12, 2, tzinfo=UTC)}]} for i in range(100)}
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        parsed = copy.deepcopy(answers)
        as_parsed = tracemalloc.get_traced_memory()[0] - before
        del parsed
        obs = Observations(ttl=60, clock=Clock())
        before = tracemalloc.get_traced_memory()[0]
        obs.snapshot("api", "", lambda: copy.deepcopy(answers))  # freed once held
        as_held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert as_held < as_parsed / 3, (as_held, as_parsed)
