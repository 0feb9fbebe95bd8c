"""The Grafana dashboard reads only metrics the operator exports, in valid PromQL."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.platform.kube import KUBECTL
from tests.unit.monitoring.conftest import MONITORING
from tests.unit.monitoring.promql import exported, metric_names

DASHBOARD = MONITORING / "dashboard.json"
# Grafana's own variables, as Grafana would substitute them before asking Prometheus.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def _targets(panels: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    for panel in panels:
        yield from _targets(panel.get("panels") or [])
        for target in panel.get("targets") or []:
            yield panel["title"], target["expr"]


def _queries() -> list[tuple[str, str]]:
    return list(_targets(json.loads(DASHBOARD.read_text())["panels"]))


def _grafana(expr: str) -> str:
    return re.sub(r"\$__\w+", lambda m: GRAFANA_VARIABLES[m.group(0)], expr)


def test_every_query_names_a_metric_the_operator_exports() -> None:
    queries = _queries()
    assert len(queries) >= 20
    for title, expr in queries:
        names = metric_names(expr)
        assert names, f"{title}: {expr} reads no metric"
        assert names <= exported(), f"{title}: {names - exported()} is not exported"


def test_every_metric_of_the_operator_is_on_the_dashboard() -> None:
    shown = {name for _, expr in _queries() for name in metric_names(expr)}
    ours = {n for n in exported() if n.startswith(("wpenv_", "controller_runtime_", "workqueue_"))
            and not n.endswith(("_created", "_sum"))}
    families = {re.sub(r"_(bucket|count|total)$", "", n) for n in ours}
    missing = {f for f in families if not any(s.startswith(f) for s in shown)}
    assert not missing, f"not on the dashboard: {sorted(missing)}"


def test_every_query_is_valid_promql(promtool: Path, tmp_path: Path) -> None:
    rules = [{"record": f"dashboard:query{i}", "expr": _grafana(expr)}
             for i, (_, expr) in enumerate(_queries())]
    (tmp_path / "queries.yaml").write_text(
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]})
    )
    checked = subprocess.run([str(promtool), "check", "rules", "queries.yaml"], cwd=tmp_path,
                             capture_output=True, text=True, check=False, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_monitoring_folder_renders_with_the_dashboard_in_a_configmap() -> None:
    rendered = subprocess.run([KUBECTL, "kustomize", str(MONITORING)], capture_output=True,
                              text=True, check=True, timeout=60).stdout
    objects = {o["kind"]: o for o in yaml.safe_load_all(rendered)}
    assert set(objects) == {"ConfigMap", "ServiceMonitor", "PrometheusRule"}
    dashboard = objects["ConfigMap"]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["dashboard.json"]) == json.loads(DASHBOARD.read_text())
    assert all(o["metadata"]["namespace"] == "wpenv-system" for o in objects.values())
    endpoint = objects["ServiceMonitor"]["spec"]["endpoints"][0]
    assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"
