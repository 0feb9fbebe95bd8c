"""The target group's desired document and its staleness check, without AWS."""

from __future__ import annotations

from wpenv.engine import make_context
from wpenv.reconcilers import target_group as tg
from wpenv.reconcilers.base import Context
from wpenv.settings import Settings


def _ctx(tenant: str = "acme") -> Context:
    settings = Settings(vpc_id="vpc-123", container_port=8080, load_balancer_arns=[])
    return make_context("ns", tenant, {"tenantId": tenant}, settings=settings, clients=None)


def test_desired_target_group_is_an_ip_http_group_on_the_container_port() -> None:
    ctx = _ctx()
    doc = tg.desired_target_group(ctx)
    assert doc["Name"] == ctx.names.target_group == "wp-acme"
    assert (doc["Protocol"], doc["Port"], doc["VpcId"], doc["TargetType"]) == (
        "HTTP", 8080, "vpc-123", "ip",
    )
    assert doc["HealthCheckPath"] == "/acme/wp-login.php"  # WordPress lives under the prefix
    assert doc["Matcher"] == {"HttpCode": "200-399"}
    assert doc["HealthCheckIntervalSeconds"] == 15
    assert doc["HealthyThresholdCount"] == 2
    assert doc["Tags"] == ctx.tag_list


def test_long_tenant_name_fits_the_elb_limit() -> None:
    ctx = _ctx("a" * 32)
    assert len(tg.desired_target_group(ctx)["Name"]) <= 32


def test_echoed_health_check_is_up_to_date_and_defaults_are_ignored() -> None:
    echoed = {
        **tg.desired_health_check("/acme/wp-login.php"),
        "HealthCheckTimeoutSeconds": 5,  # server default: not ours to compare
        "UnhealthyThresholdCount": 2,
        "HealthCheckPort": "traffic-port",
    }
    assert tg.health_check_differences(echoed, "/acme/wp-login.php") == []
    # Nothing echoed: nothing to disagree with.
    assert tg.health_check_differences({}, "/acme/wp-login.php") == []


def test_changed_health_check_fields_are_reported() -> None:
    changed = {
        **tg.desired_health_check("/acme/wp-login.php"),
        "HealthCheckPath": "/",
        "HealthyThresholdCount": 5,
        "Matcher": {"HttpCode": "200"},
    }
    assert tg.health_check_differences(changed, "/acme/wp-login.php") == [
        "HealthCheckPath", "HealthyThresholdCount", "Matcher",
    ]


def test_declarations() -> None:
    resource = tg.TargetGroup()
    assert resource.ids == ("targetGroupArn",) and resource.gone == {"TargetGroupNotFound"}
    assert resource.retainable and resource.needs == ()
