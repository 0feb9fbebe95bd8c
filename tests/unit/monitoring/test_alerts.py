"""The PrometheusRule's alerts, tested by Prometheus's own rule unit tests (promtool)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.unit.monitoring.conftest import MONITORING
from tests.unit.monitoring.promql import exported, metric_names

TESTS = Path(__file__).with_name("alerts.test.yaml")
ALERTS = {
    "WpenvProvisionTooLong", "WpenvEnvironmentsFailed", "WpenvOrphansFound",
    "WpenvReconcileErrorsClimbing", "WpenvUserPoolQuotaHigh", "WpenvLoadBalancerPoolHigh",
    "WpenvAwsThrottlingSustained",
}


def _rule() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    return loaded


def _rules() -> list[dict[str, Any]]:
    return [rule for group in _rule()["spec"]["groups"] for rule in group["rules"]]


def _promtool(promtool: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(promtool), *args], cwd=cwd, capture_output=True, text=True,
                          check=False, timeout=120)


def test_the_rules_pass_promtool_check_and_their_unit_tests(
    promtool: Path, tmp_path: Path
) -> None:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(_rule()["spec"]))
    shutil.copy(TESTS, tmp_path / TESTS.name)
    checked = _promtool(promtool, "check", "rules", "rules.yaml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = _promtool(promtool, "test", "rules", TESTS.name, cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout + tested.stderr


def test_every_alert_the_issue_asks_for_is_there_and_shown_silent_and_firing() -> None:
    assert {rule["alert"] for rule in _rules()} == ALERTS
    cases = [case for test in yaml.safe_load(TESTS.read_text())["tests"]
             for case in test["alert_rule_test"]]
    firing = {case["alertname"] for case in cases if case["exp_alerts"]}
    silent = {case["alertname"] for case in cases if not case["exp_alerts"]}
    assert firing == ALERTS and silent == ALERTS


def test_every_alert_reads_metrics_the_operator_exports() -> None:
    for rule in _rules():
        names = metric_names(rule["expr"])
        assert names, rule["alert"]
        assert names <= exported(), f"{rule['alert']} reads {names - exported()}"
