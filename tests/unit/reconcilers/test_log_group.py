"""The log group's desired settings and drift, without AWS."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from wpenv.plan import names_for, tags_for
from wpenv.reconcilers import log_group as lg
from wpenv.settings import LOG_RETENTION_DAYS, Settings

ARN = "arn:aws:logs:eu-west-1:111122223333:log-group:/wpenv/acme"
TAGS = tags_for("ns", "acme", "acme", Settings())


def test_retention_defaults_to_30_days_and_takes_only_what_cloudwatch_accepts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().log_retention_days == 30
    monkeypatch.setenv("WPENV_LOG_RETENTION_DAYS", "365")
    assert Settings().log_retention_days == 365
    for refused in (0, 2, 31, 3650, -1):
        with pytest.raises(ValidationError):
            Settings(log_retention_days=refused)
    assert all(Settings(log_retention_days=days).log_retention_days == days
               for days in LOG_RETENTION_DAYS)


def test_name_is_the_plans_and_arns_read_both_ways() -> None:
    assert names_for("ns", "x", "acme").log_group == "/wpenv/acme"
    assert lg.name_of(ARN) == lg.name_of(f"{ARN}:*") == "/wpenv/acme"
    assert lg.group_arn({"logGroupArn": ARN, "arn": f"{ARN}:*"}) == ARN
    assert lg.group_arn({"arn": f"{ARN}:*"}) == ARN  # an older answer without logGroupArn


def test_retention_and_tags_are_drift_extra_tags_are_not() -> None:
    right = lg.Group("/wpenv/acme", ARN, 30, {**TAGS, "cost-centre": "42"})
    assert lg.differences(TAGS, 30, right) == []
    assert lg.differences(TAGS, 30, lg.Group("/wpenv/acme", ARN, None, TAGS)) == ["retention"]
    assert lg.differences(TAGS, 90, right) == ["retention"]
    edited = {**TAGS, "wpenv.bbws.io/tenant": "someone-else"}
    assert lg.differences(TAGS, 30, lg.Group("/wpenv/acme", ARN, 30, edited)) == ["tags"]
    untagged = lg.Group("/wpenv/acme", ARN, 7, {})
    assert lg.differences(TAGS, 30, untagged) == ["retention", "tags"]


def test_declarations() -> None:
    resource = lg.LogGroup()
    assert resource.kind == "LogGroup" and resource.group == "Compute"
    assert resource.ids == ("logGroupArn",) and resource.retainable
    assert resource.gone == {"ResourceNotFoundException"}
    assert resource.needs == () and resource.archive is None
