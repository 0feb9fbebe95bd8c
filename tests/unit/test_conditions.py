"""Status helpers: conditions keep their transition time unless the status flips."""

from __future__ import annotations

from wpenv import conditions as st
from wpenv.api.models import Phase
from wpenv.operator.decisions import accept


def test_new_condition_gets_the_current_time() -> None:
    merged = st.merge_conditions([], [st.Cond("Ready", "False", "Pending", "m")], 1, "T1")
    assert merged == [{"type": "Ready", "status": "False", "reason": "Pending",
                       "message": "m", "observedGeneration": 1, "lastTransitionTime": "T1"}]


def test_transition_time_moves_only_when_status_flips() -> None:
    first = st.merge_conditions([], [st.Cond("Ready", "False", "A")], 1, "T1")
    same = st.merge_conditions(first, [st.Cond("Ready", "False", "B", "other")], 2, "T2")
    assert same[0]["lastTransitionTime"] == "T1"
    assert same[0]["reason"] == "B" and same[0]["observedGeneration"] == 2
    flipped = st.merge_conditions(same, [st.Cond("Ready", "True", "Active")], 2, "T3")
    assert flipped[0]["lastTransitionTime"] == "T3"


def test_other_conditions_are_kept_in_order() -> None:
    current = [{"type": "Database", "status": "True"}, {"type": "Ready", "status": "False"}]
    merged = st.merge_conditions(current, [st.Cond("Ready", "True", "Active")], 1, "T")
    assert [c["type"] for c in merged] == ["Database", "Ready"]
    assert merged[0] == {"type": "Database", "status": "True"}


def test_status_patch_is_empty_when_nothing_changes() -> None:
    patch = st.status_patch({}, 1, phase=Phase.ACTIVE,
                            conditions=[st.Cond("Ready", "True", "Active")], now="T1", url="u")
    assert patch["phase"] == "Active" and patch["url"] == "u"
    again = st.status_patch(patch, 1, phase=Phase.ACTIVE,
                            conditions=[st.Cond("Ready", "True", "Active")], now="T2", url="u")
    assert again == {}


def test_find_returns_the_condition_or_none() -> None:
    conditions = [{"type": "Ready", "status": "True"}]
    assert st.find(conditions, "Ready") == conditions[0]
    assert st.find(conditions, "Database") is None


def test_accept_records_pending_provisioning_once() -> None:
    patch = accept({}, 1)
    assert patch["phase"] == "PendingProvisioning"
    assert patch["observedGeneration"] == 1
    ready = st.find(patch["conditions"], "Ready")
    assert ready is not None and ready["status"] == "False"
    assert accept(patch, 1) == {}
    assert accept({"phase": "Active"}, 2) == {}
