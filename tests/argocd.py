"""The Argo CD health check of WordPressEnvironment, run the way Argo CD runs it.

Argo CD evaluates health.lua with gopher-lua, a Lua 5.1, so this runs it on lupa's Lua 5.1.
Like Argo CD (util/lua/lua.go) the resource becomes the global `obj`, every number a float
(gopher-lua has only float64 numbers), and a script from argocd-cm only gets the base,
table, package and a restricted os library: no string or math, no string methods. The
same cases also run in gopher-lua itself (manifests/argocd/healthtest/). Used by the unit
tests over testdata and by the end-to-end tests over the statuses the operator writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lupa.lua51
import yaml

REPO = Path(__file__).resolve().parents[1]
ARGOCD = REPO / "manifests" / "argocd"
HEALTH_DIR = ARGOCD / "resource_customizations" / "bbws.io" / "WordPressEnvironment"
HEALTH_LUA = HEALTH_DIR / "health.lua"
HEALTH_TEST = HEALTH_DIR / "health_test.yaml"
# gitops-engine's HealthStatusCode values; Argo CD turns anything else into Unknown.
VALID_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}

# What lupa opens beyond Argo CD's sandbox, removed so the test fails where Argo CD would.
# The string metatable goes too: without the string library gopher-lua has none.
SANDBOX = """
debug.setmetatable("", nil)
local time, date, clock, difftime = os.time, os.date, os.clock, os.difftime
string, math, io, debug, coroutine, python = nil, nil, nil, nil, nil, nil
os = {time = time, date = date, clock = clock, difftime = difftime}
"""


def load_cases() -> list[dict[str, Any]]:
    """The cases of health_test.yaml, in Argo CD's own test format."""
    document = yaml.safe_load(HEALTH_TEST.read_text())
    cases: list[dict[str, Any]] = document["tests"]
    return cases


def to_lua(runtime: Any, value: Any) -> Any:
    """Convert a decoded YAML value as Argo CD's decodeValue does (numbers to float)."""
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list):
        array = runtime.table()
        for index, item in enumerate(value, start=1):
            array[index] = to_lua(runtime, item)
        return array
    if isinstance(value, dict):
        table = runtime.table()
        for key, item in value.items():
            table[str(key)] = to_lua(runtime, item)
        return table
    # PyYAML turns unquoted timestamps into datetimes; Kubernetes JSON has only strings.
    raise TypeError(f"{type(value).__name__} cannot come from a Kubernetes object: quote it")


def run_health(resource: dict[str, Any]) -> dict[str, str]:
    """Evaluate health.lua for one resource and return {status, message} like Argo CD."""
    runtime = lupa.lua51.LuaRuntime(register_eval=False, register_builtins=False)
    runtime.execute(SANDBOX)
    runtime.globals().obj = to_lua(runtime, resource)
    result = runtime.execute(HEALTH_LUA.read_text())
    assert lupa.lua51.lua_type(result) == "table", "health.lua must return a table"
    status = result["status"]
    # Argo CD JSON-encodes the table into a HealthStatus; an unknown code becomes Unknown.
    if status not in VALID_STATUSES:
        return {"status": "Unknown", "message": "Lua returned an invalid health status"}
    message = result["message"]
    return {"status": status, "message": "" if message is None else message}
