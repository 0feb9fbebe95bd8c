"""The registry: one list, in an order that honours every declared dependency."""

from __future__ import annotations

import pytest

from wpenv.archive.hooks import Everyday
from wpenv.reconcilers import registry
from wpenv.reconcilers.base import Resource


class _Kind(Resource):
    def __init__(self, kind: str, needs: tuple[str, ...] = (), ids: tuple[str, ...] = ()) -> None:
        self.kind = kind  # type: ignore[misc]
        self.needs = needs  # type: ignore[misc]
        self.ids = ids  # type: ignore[misc]


def test_the_registry_honours_its_own_dependencies() -> None:
    registry.check(registry.KINDS)
    names = [k.kind for k in registry.KINDS]
    assert len(names) == len(set(names))
    assert names[0] == "Placement", "placed first: the URL follows it, a full pool waits early"
    assert names[1] == "UserPool", "then identity: nothing is built while the pool quota waits"
    assert names.index("DatabaseSecret") < names.index("Database")
    assert names.index("ListenerRule") < names.index("Service")


def test_a_kind_before_what_it_needs_is_refused() -> None:
    with pytest.raises(ValueError, match="b needs a, which comes later"):
        registry.check([_Kind("b", needs=("a",)), _Kind("a")])
    with pytest.raises(ValueError, match="is not in the registry"):
        registry.check([_Kind("b", needs=("x",))])


def test_two_kinds_may_not_claim_one_status_key() -> None:
    with pytest.raises(ValueError, match="both a and b"):
        registry.check([_Kind("a", ids=("fooId",)), _Kind("b", ids=("fooId",))])


def test_every_kind_declares_what_the_loops_read() -> None:
    hooks = Everyday().hooks()
    for kind in registry.KINDS:
        assert kind.ids or kind.needs, f"{kind.kind} records no id and goes with nothing"
        assert kind.gone or not kind.in_aws, f"{kind.kind} names no exact 'already gone' code"
        assert kind.archive is None or kind.archive in hooks, kind.kind
        assert all(" " not in code and "*" not in code for code in kind.gone)
        assert kind.goes_with is None or kind.goes_with in kind.needs, kind.kind
    holding = {k.kind: k.archive for k in registry.KINDS if k.archive}
    assert holding == {"UserPool": "users", "AccessPoint": "files", "Database": "database"}


def test_by_name_finds_each_kind() -> None:
    for kind in registry.KINDS:
        assert registry.by_name(kind.kind) is kind
    with pytest.raises(KeyError):
        registry.by_name("Nope")


def test_every_kind_is_declared_whole() -> None:
    registry.check_declarations(registry.KINDS)
    assert {k.kind for k in registry.KINDS} == {type(k).__name__ for k in registry.KINDS}


def test_a_kind_without_gone_codes_or_a_tag_is_refused() -> None:
    undeclared = _Kind("a")
    undeclared.group = "Storage"  # type: ignore[misc]
    with pytest.raises(ValueError, match='a declares no "gone" codes'):
        registry.check_declarations([undeclared])
    undeclared.gone = frozenset({"NotFound"})  # type: ignore[misc]
    undeclared.retainable = True  # type: ignore[misc]
    with pytest.raises(ValueError, match="a declares no tag"):
        registry.check_declarations([undeclared])


def test_a_class_statement_declares_a_kind_and_refuses_what_is_not_a_declaration() -> None:
    class Bucket(Resource, group="Storage", ids=("bucket",), gone=["NoSuchBucket"]):
        """A kind declared in its class statement."""

    assert (Bucket.kind, Bucket.ids) == ("Bucket", ("bucket",))
    assert Bucket.gone == frozenset({"NoSuchBucket"})
    with pytest.raises(TypeError, match=r"Odd declares \['colour'\]"):
        class Odd(Resource, colour="red"):
            """Not a declaration."""
    with pytest.raises(TypeError, match="archive step 'tape'"):
        class Taped(Resource, archive="tape"):
            """No such archive step."""
