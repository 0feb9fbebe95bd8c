"""The data plane's rules (tests/platform/wordpress.py) without starting any WordPress.

What ECS injects into a container, where its wp-content lands, how the ALB's matcher reads,
and the task's wp-config.php; moto in-process (mock_aws), as the simulator's tests do.
The integration test (tests/integration/test_wordpress_data_plane.py) runs real tasks.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.backends import get_backend
from moto.core.models import DEFAULT_ACCOUNT_ID

from tests.platform import wordpress
from tests.platform.wordpress import (
    HealthCheck,
    container_environment,
    content_directory,
    enforced_identity,
)

REGION = "us-east-1"


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        yield {name: boto3.client(name, region_name=REGION)
               for name in ("secretsmanager", "efs", "ecs")}


def _env(container: dict[str, Any]) -> dict[str, str]:
    return container_environment(container, DEFAULT_ACCOUNT_ID, REGION)


def test_secrets_resolve_whole_or_by_json_key_and_environment_passes_through(
    aws: dict[str, Any],
) -> None:
    secret = aws["secretsmanager"].create_secret(
        Name="wpenv/acme/database", SecretString=json.dumps({"username": "u", "password": "p"})
    )["ARN"]
    env = _env({
        "environment": [{"name": "WORDPRESS_DB_HOST", "value": "db:3306"}],
        "secrets": [
            {"name": "WORDPRESS_DB_USER", "valueFrom": f"{secret}:username::"},
            {"name": "WORDPRESS_DB_PASSWORD", "valueFrom": f"{secret}:password:AWSCURRENT:"},
            {"name": "WHOLE", "valueFrom": secret},
            {"name": "BY_NAME", "valueFrom": "wpenv/acme/database"},
        ],
    })
    assert env["WORDPRESS_DB_HOST"] == "db:3306"
    assert (env["WORDPRESS_DB_USER"], env["WORDPRESS_DB_PASSWORD"]) == ("u", "p")
    assert json.loads(env["WHOLE"]) == json.loads(env["BY_NAME"]) == {"username": "u",
                                                                      "password": "p"}
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == REGION  # what ECS adds


def test_a_json_key_the_secret_lacks_stops_the_task_as_ecs_says(aws: dict[str, Any]) -> None:
    secret = aws["secretsmanager"].create_secret(
        Name="s", SecretString=json.dumps({"username": "u"}))["ARN"]
    with pytest.raises(LookupError) as caught:
        _env({"secrets": [{"name": "X", "valueFrom": f"{secret}:password::"}]})
    assert "did not contain json key password" in str(caught.value)


def test_a_version_stage_picks_that_version(aws: dict[str, Any]) -> None:
    client = aws["secretsmanager"]
    secret = client.create_secret(Name="s", SecretString=json.dumps({"password": "old"}))["ARN"]
    client.put_secret_value(SecretId=secret, SecretString=json.dumps({"password": "new"}),
                            VersionStages=["AWSPENDING"])
    env = _env({"secrets": [{"name": "NOW", "valueFrom": f"{secret}:password::"},
                            {"name": "NEXT", "valueFrom": f"{secret}:password:AWSPENDING:"}]})
    assert (env["NOW"], env["NEXT"]) == ("old", "new")


def test_wp_content_is_the_access_points_root_on_the_local_efs(
    aws: dict[str, Any], tmp_path: Path
) -> None:
    fs = aws["efs"].create_file_system(CreationToken="t")["FileSystemId"]
    ap = aws["efs"].create_access_point(
        FileSystemId=fs, RootDirectory={"Path": "/tenants/acme"})["AccessPointId"]
    aws["ecs"].register_task_definition(
        family="f",
        containerDefinitions=[{"name": "wordpress", "image": "wordpress", "memory": 512}],
        volumes=[{"name": "wp-content", "efsVolumeConfiguration": {
            "fileSystemId": fs, "rootDirectory": "/",
            "authorizationConfig": {"accessPointId": ap, "iam": "ENABLED"}}}],
    )
    ecs = get_backend("ecs")[DEFAULT_ACCOUNT_ID][REGION]
    definition = ecs.describe_task_definition("f")
    mounted = {"mountPoints": [{"sourceVolume": "wp-content",
                                "containerPath": "/var/www/html/wp-content"}]}
    found = content_directory(definition, mounted, DEFAULT_ACCOUNT_ID, REGION, tmp_path)
    assert found == tmp_path / "tenants" / "acme"
    assert content_directory(definition, {}, DEFAULT_ACCOUNT_ID, REGION, tmp_path) is None


def test_the_task_runs_as_the_user_its_access_point_enforces(
    aws: dict[str, Any], tmp_path: Path
) -> None:
    fs = aws["efs"].create_file_system(CreationToken="t")["FileSystemId"]
    enforced = aws["efs"].create_access_point(
        FileSystemId=fs, PosixUser={"Uid": 20123, "Gid": 20124},
        RootDirectory={"Path": "/tenants/acme"})["AccessPointId"]
    open_point = aws["efs"].create_access_point(FileSystemId=fs)["AccessPointId"]
    mounted = {"mountPoints": [{"sourceVolume": "wp-content",
                                "containerPath": "/var/www/html/wp-content"}]}
    ecs = get_backend("ecs")[DEFAULT_ACCOUNT_ID][REGION]
    found = {}
    for family, point in (("enforced", enforced), ("open", open_point)):
        aws["ecs"].register_task_definition(
            family=family,
            containerDefinitions=[{"name": "wordpress", "image": "wordpress", "memory": 512}],
            volumes=[{"name": "wp-content", "efsVolumeConfiguration": {
                "fileSystemId": fs, "authorizationConfig": {"accessPointId": point}}}],
        )
        found[family] = enforced_identity(ecs.describe_task_definition(family), mounted,
                                          DEFAULT_ACCOUNT_ID, REGION)
    assert found == {"enforced": (20123, 20124), "open": None}
    # What the image's entrypoint copies into wp-content goes through the mount too.
    if os.geteuid() == 0:
        wordpress.populate_content(tmp_path, (20123, 20124))
        owners = {(p.stat().st_uid, p.stat().st_gid) for p in tmp_path.rglob("*")}
        assert owners == {(20123, 20124)}


@pytest.mark.parametrize(("codes", "status", "passes"), [
    ("200", 200, True), ("200", 302, False), ("200-399", 302, True), ("200-399", 500, False),
    ("200,302", 302, True), ("200,302", 301, False),
])
def test_the_matcher_reads_codes_as_the_alb_does(codes: str, status: int, passes: bool) -> None:
    assert HealthCheck("arn", codes=codes).matches(status) is passes


def test_wp_config_is_valid_php_with_fresh_salts_per_task(tmp_path: Path, php: str) -> None:
    first, second = wordpress.wp_config(), wordpress.wp_config()
    assert first != second, "each task has its own fallback salts, as each container"
    path = tmp_path / "wp-config.php"
    path.write_text(first)
    lint = subprocess.run([php, "-l", str(path)], capture_output=True, text=True, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    for name in ("WORDPRESS_DB_HOST", "WORDPRESS_CONFIG_EXTRA", "WORDPRESS_AUTH_KEY",
                 "WORDPRESS_TABLE_PREFIX"):
        assert name.removeprefix("WORDPRESS_") in first
