"""The kill points: derived from the registry, honoured only outside a pod, exit hard."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from wpenv import crashpoints
from wpenv.crashpoints import EXIT_CODE, IN_A_POD, SETTING, deprovisioning, provisioning
from wpenv.reconcilers import registry
from wpenv.reconcilers.base import Resource

KINDS = [k.kind for k in registry.KINDS]


def test_every_kind_has_a_point_after_its_create_and_after_its_status_write() -> None:
    points = provisioning(registry.KINDS)
    assert points[: 2 * len(KINDS)] == [
        point for kind in KINDS for point in (f"created:{kind}", f"recorded:{kind}")
    ]
    assert points[-1] == "provision:finished"
    assert len(points) == len(set(points)) == 2 * len(KINDS) + 1


def test_deprovisioning_points_follow_the_teardown_with_the_streams_cut_before_their_kind() -> None:
    points = deprovisioning(registry.KINDS)
    removed = "deprovision:after:"
    after = [p.removeprefix(removed) for p in points if p.startswith(removed)]
    assert after == KINDS[::-1]
    assert (points[0], points[-1]) == ("deprovision:begun", "deprovision:finished")
    holders = {k.archive: k.kind for k in registry.KINDS if k.archive}
    for hook, point in crashpoints.STREAMED.items():
        assert points[points.index(point) + 1] == f"deprovision:after:{holders[hook]}"
    assert len(points) == len(set(points)) == len(KINDS) + 2 + len(crashpoints.STREAMED)


class Newcomer(Resource, group="Compute", gone={"NotFound"}, archive="files"):
    """A kind that is not in the registry yet."""


def test_a_new_kind_gets_its_points_without_anyone_listing_them() -> None:
    kinds = [*registry.KINDS, Newcomer()]
    assert {"created:Newcomer", "recorded:Newcomer"} <= set(provisioning(kinds))
    assert deprovisioning(kinds)[1:3] == ["upload:middle", "deprovision:after:Newcomer"]


def _run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A fresh interpreter that reaches the boundary `created:Database`, then says so."""
    code = ("from wpenv.crashpoints import crashpoint; crashpoint('created', 'Database'); "
            "print('went on')")
    clean = {k: v for k, v in os.environ.items() if k not in (SETTING, IN_A_POD)}
    return subprocess.run([sys.executable, "-c", code], env={**clean, **env},
                          capture_output=True, text=True, timeout=60, check=False)


def test_the_armed_point_exits_hard_and_says_which() -> None:
    result = _run({SETTING: "created:Database"})
    assert result.returncode == EXIT_CODE
    assert result.stdout == ""
    assert "crash point created:Database reached" in result.stderr


@pytest.mark.parametrize("env", [
    {},
    {SETTING: "recorded:Database"},
    {SETTING: "created:Database", IN_A_POD: "10.96.0.1"},  # in a pod: never honoured
], ids=["unset", "another-point", "in-a-pod"])
def test_any_other_boundary_goes_on(env: dict[str, str]) -> None:
    result = _run(env)
    assert (result.returncode, result.stdout.strip()) == (0, "went on")


def test_armed_names_only_the_point_this_process_exits_at() -> None:
    code = ("from wpenv.crashpoints import armed; "
            "print(armed('recorded', 'Database'), armed('recorded', 'Service'), "
            "armed('created', 'Database'))")
    clean = {k: v for k, v in os.environ.items() if k not in (SETTING, IN_A_POD)}
    result = subprocess.run([sys.executable, "-c", code],
                            env={**clean, SETTING: "recorded:Database"},
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.stdout.split() == ["True", "False", "False"]
