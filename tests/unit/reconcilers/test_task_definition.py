"""The task definition document, without AWS: credentials by reference, EFS locked down."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from wpenv.engine import make_context
from wpenv.errors import TransientError
from wpenv.reconcilers import task_definition as td
from wpenv.reconcilers.base import Context
from wpenv.settings import Settings

ROLE = "arn:aws:iam::111122223333:role/wpenv-acme-task"
EXECUTION_ROLE = "arn:aws:iam::111122223333:role/wpenv-acme-exec"
LOG_GROUP = "arn:aws:logs:eu-west-1:111122223333:log-group:/wpenv/acme"
SECRET = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:wpenv/acme/database-AbCdEf"
SITE = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:wpenv/acme/wordpress-GhIjKl"
IDS = {"taskRoleArn": ROLE, "executionRoleArn": EXECUTION_ROLE, "logGroupArn": LOG_GROUP,
       "dbSecretArn": SECRET, "siteSecretArn": SITE, "accessPointId": "fsap-0123"}


def _ctx(ids: dict[str, Any] | None = None, **spec: Any) -> Context:
    """Single sign-on off unless the test asks: its settings have tests of their own."""
    settings = Settings(file_system_id="fs-123", region="eu-west-1", container_port=80,
                        load_balancer_arns=[], db_host="db.example.internal", db_port=3307)
    return make_context(
        "ns", "acme", {"tenantId": "acme", "identity": {"enabled": False}, **spec},
        settings=settings, clients=None, ids=IDS if ids is None else ids,
    )


def _container(doc: dict[str, Any]) -> dict[str, Any]:
    (container,) = doc["containerDefinitions"]
    return dict(container)


def test_credentials_are_secrets_by_arn_and_json_key() -> None:
    container = _container(td.desired_task_definition(_ctx()))
    refs = {s["name"]: s["valueFrom"] for s in container["secrets"]}
    assert {k: v for k, v in refs.items() if v.startswith(SECRET)} == {
        "WORDPRESS_DB_USER": f"{SECRET}:username::",
        "WORDPRESS_DB_PASSWORD": f"{SECRET}:password::",
        "WORDPRESS_DB_NAME": f"{SECRET}:dbname::",
    }
    # No credential is passed as a plain environment variable; only the endpoint is.
    plain = {e["name"]: e["value"] for e in container["environment"]
             if e["name"].startswith("WORDPRESS_DB")}
    assert plain == {"WORDPRESS_DB_HOST": "db.example.internal:3307"}


def test_the_database_host_carries_the_port_wordpress_would_otherwise_not_know() -> None:
    """WordPress reads the port only from DB_HOST; a secret key gives one value each."""
    container = _container(td.desired_task_definition(_ctx()))
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env["WORDPRESS_DB_HOST"].rpartition(":")[2] == "3307"


def test_without_a_database_endpoint_the_task_definition_waits() -> None:
    ctx = _ctx()
    ctx.settings.db_host = ""
    with pytest.raises(TransientError):
        td.desired_task_definition(ctx)


def test_no_password_anywhere_in_the_document(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MYSQL_PWD", "never-in-a-task-definition")
    text = json.dumps(td.desired_task_definition(_ctx()))
    assert "never-in-a-task-definition" not in text
    # The only strings that mention a password: the variable's name and its reference.
    mentions = re.findall(r'"[^"]*password[^"]*"', text, flags=re.IGNORECASE)
    assert mentions == ['"WORDPRESS_DB_PASSWORD"', f'"{SECRET}:password::"',
                        '"WORDPRESS_ADMIN_PASSWORD"', f'"{SITE}:admin_password::"']


def test_efs_volume_uses_the_access_point_with_iam_and_tls() -> None:
    doc = td.desired_task_definition(_ctx())
    (volume,) = doc["volumes"]
    assert volume["name"] == "wp-content"
    assert volume["efsVolumeConfiguration"] == {
        "fileSystemId": "fs-123",
        "rootDirectory": "/",
        "transitEncryption": "ENABLED",
        "authorizationConfig": {"accessPointId": "fsap-0123", "iam": "ENABLED"},
    }
    assert _container(doc)["mountPoints"][0]["sourceVolume"] == "wp-content"
    assert _container(doc)["mountPoints"][0]["containerPath"] == "/var/www/html/wp-content"


def test_cpu_and_memory_are_strings_and_fargate_settings() -> None:
    doc = td.desired_task_definition(_ctx(cpu=1024, memory=4096, image="wordpress:6.8"))
    assert (doc["cpu"], doc["memory"]) == ("1024", "4096")
    assert doc["requiresCompatibilities"] == ["FARGATE"]
    assert doc["networkMode"] == "awsvpc"
    assert doc["family"] == "wpenv-acme"
    # Two roles: what WordPress may do, and what ECS may do to start it.
    assert (doc["taskRoleArn"], doc["executionRoleArn"]) == (ROLE, EXECUTION_ROLE)
    container = _container(doc)
    assert container["image"] == "wordpress:6.8"
    assert container["name"] == "wordpress" and container["essential"] is True
    assert container["portMappings"] == [{"containerPort": 80, "protocol": "tcp"}]


def test_health_check_logs_and_tags() -> None:
    doc = td.desired_task_definition(_ctx())
    container = _container(doc)
    assert container["healthCheck"] == {
        "command": ["CMD-SHELL",
                    "curl -fsS http://localhost/acme/wp-login.php >/dev/null || exit 1"],
        "interval": 30, "timeout": 5, "retries": 3, "startPeriod": 60,
    }
    assert container["logConfiguration"] == {
        "logDriver": "awslogs",
        "options": {"awslogs-group": "/wpenv/acme", "awslogs-region": "eu-west-1",
                    "awslogs-stream-prefix": "wordpress"},
    }
    assert "awslogs-create-group" not in container["logConfiguration"]["options"]
    tags = {t["key"]: t["value"] for t in doc["tags"]}
    assert tags["wpenv.bbws.io/tenant"] == "acme"


@pytest.mark.parametrize(
    "missing", ["taskRoleArn", "executionRoleArn", "logGroupArn", "dbSecretArn", "accessPointId"]
)
def test_waits_for_each_dependency(missing: str) -> None:
    ids = {k: v for k, v in IDS.items() if k != missing}
    with pytest.raises(TransientError) as caught:
        td.desired_task_definition(_ctx(ids=ids))
    assert caught.value.reason == "WaitingForDependencies"
    assert missing in str(caught.value)


def test_comparison_ignores_server_defaults_but_sees_changes() -> None:
    doc = td.desired_task_definition(_ctx())
    echoed = json.loads(json.dumps(doc))
    container = echoed["containerDefinitions"][0]
    container.update(cpu=0, volumesFrom=[], systemControls=[])
    container["portMappings"][0]["hostPort"] = 80
    container["secrets"].reverse()  # order is not meaningful
    echoed.update(revision=3, status="ACTIVE", compatibilities=["EC2", "FARGATE"])
    tags = doc["tags"] + [{"key": "other", "value": "x"}]
    assert td.differences(doc, echoed, tags) == []

    changed = td.desired_task_definition(_ctx(image="wordpress:7", memory=2048))
    assert td.differences(changed, echoed, tags) == ["memory", "containerDefinitions"]
    assert td.differences(doc, echoed, []) == ["tags"]


def test_parse_arn() -> None:
    arn = "arn:aws:ecs:eu-west-1:111122223333:task-definition/wpenv-acme:12"
    assert td.parse_arn(arn) == ("wpenv-acme", 12)
    assert td.parse_arn("arn:aws:ecs:eu-west-1:1:service/x") is None


# --- single sign-on ------------------------------------------------------------------------
CLIENT_SECRET = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:wpenv/acme/oidc-client-Xy"
SSO_IDS = {
    **IDS,
    "userPoolId": "eu-west-1_AbC123",
    "userPoolClientId": "4l1ent1d",
    "userPoolDomain": "wpenv-acme-1a2b3c4d",
    "clientSecretArn": CLIENT_SECRET,
}
ON = {"enabled": True}


def test_sso_settings_and_the_client_secret_by_reference() -> None:
    doc = td.desired_task_definition(_ctx(ids=SSO_IDS, identity=ON), "http://alb:8080/acme/")
    container = _container(doc)
    env = {e["name"]: e["value"] for e in container["environment"]}
    secrets = {s["name"]: s["valueFrom"] for s in container["secrets"]}
    assert secrets["OIDC_CLIENT_SECRET"] == f"{CLIENT_SECRET}:client_secret::"
    assert "OIDC_CLIENT_SECRET" not in env
    hosted = "https://wpenv-acme-1a2b3c4d.auth.eu-west-1.amazoncognito.com"
    assert env["OIDC_CLIENT_ID"] == "4l1ent1d"
    assert env["OIDC_ENDPOINT_LOGIN_URL"] == f"{hosted}/oauth2/authorize"
    assert env["OIDC_ENDPOINT_LOGOUT_URL"] == (
        f"{hosted}/logout?client_id=4l1ent1d&logout_uri=http%3A%2F%2Falb%3A8080%2Facme%2F"
    )
    assert env["WPENV_OIDC_ISSUER"] == (
        "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123"
    )
    assert json.loads(env["WPENV_OIDC_ROLE_MAP"]) == {
        "Admin": "administrator", "Editor": "editor", "Viewer": "subscriber"
    }
    assert "define($wpenv_oidc_name" in env["WORDPRESS_CONFIG_EXTRA"]


def test_an_unplaced_tenant_signs_out_to_the_placeholder_url() -> None:
    doc = td.desired_task_definition(_ctx(ids=SSO_IDS, identity=ON))
    env = {e["name"]: e["value"] for e in _container(doc)["environment"]}
    assert env["OIDC_ENDPOINT_LOGOUT_URL"].endswith(
        "logout_uri=http%3A%2F%2Falb.local%2Facme%2F"
    )
    spec_logout = {"enabled": True, "logoutUrls": ["https://acme.example.com/bye"]}
    doc = td.desired_task_definition(_ctx(ids=SSO_IDS, identity=spec_logout))
    env = {e["name"]: e["value"] for e in _container(doc)["environment"]}
    assert env["OIDC_ENDPOINT_LOGOUT_URL"].endswith(
        "logout_uri=https%3A%2F%2Facme.example.com%2Fbye"
    )


def test_identity_off_means_no_sso_settings_even_with_ids_left_over() -> None:
    container = _container(td.desired_task_definition(_ctx(ids=SSO_IDS)))
    names = {e["name"] for e in container["environment"]} | {
        s["name"] for s in container["secrets"]
    }
    assert not [n for n in names if "OIDC" in n]
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env["WORDPRESS_CONFIG_EXTRA"] == td.BASE_CONFIG, "only the database's TLS and URL"


def test_wordpress_verifies_the_database_certificate() -> None:
    """MYSQLI_CLIENT_SSL alone encrypts but accepts any certificate (mysqlnd)."""
    assert "MYSQLI_CLIENT_SSL_VERIFY_SERVER_CERT" in td.DB_TLS_CONFIG


def test_wordpress_connects_to_the_database_over_tls_with_and_without_sso() -> None:
    for ctx in (_ctx(ids=SSO_IDS), _ctx(ids=SSO_IDS, identity={"enabled": True})):
        env = [e for e in _container(td.desired_task_definition(ctx))["environment"]
               if e["name"] == "WORDPRESS_CONFIG_EXTRA"]
        assert len(env) == 1 and env[0]["value"].startswith(td.DB_TLS_CONFIG)


@pytest.mark.parametrize(
    "missing", ["userPoolId", "userPoolClientId", "userPoolDomain", "clientSecretArn"]
)
def test_with_identity_waits_for_each_cognito_piece(missing: str) -> None:
    ids = {k: v for k, v in SSO_IDS.items() if k != missing}
    with pytest.raises(TransientError) as caught:
        td.desired_task_definition(_ctx(ids=ids, identity=ON))
    assert caught.value.reason == "WaitingForDependencies"
    assert missing in str(caught.value)
    td.desired_task_definition(_ctx(ids=ids))  # identity off: not needed


class _Ecs:
    """Records the calls `remove` makes (a stand-in client, not a patched boto3)."""

    def __init__(self) -> None:
        self.deregistered: list[str] = []
        self.deleted: list[list[str]] = []

    def deregister_task_definition(self, taskDefinition: str) -> None:  # noqa: N803
        self.deregistered.append(taskDefinition)

    def delete_task_definitions(self, taskDefinitions: list[str]) -> None:  # noqa: N803
        self.deleted.append(list(taskDefinitions))


class _Clients:
    def __init__(self) -> None:
        self.ecs = _Ecs()


ARNS = tuple(f"arn:aws:ecs:eu-west-1:1:task-definition/wpenv-acme:{n}" for n in range(1, 13))


def test_remove_deregisters_the_active_and_deletes_all_in_batches_of_ten() -> None:
    clients = _Clients()
    family = td.Family("wpenv-acme", ARNS, active=ARNS[-2:])
    td.TaskDefinition().remove(clients, Settings(load_balancer_arns=[]), family)
    assert clients.ecs.deregistered == list(ARNS[-2:])
    assert clients.ecs.deleted == [list(ARNS[:10]), list(ARNS[10:])]


def test_remove_of_a_scanned_family_deregisters_every_revision() -> None:
    """The tagging API does not say which revisions are ACTIVE: deregister them all."""
    clients = _Clients()
    td.TaskDefinition().remove(clients, Settings(load_balancer_arns=[]), td.Family("f", ARNS[:3]))
    assert clients.ecs.deregistered == list(ARNS[:3])
    assert clients.ecs.deleted == [list(ARNS[:3])]


def test_family_of_an_arn() -> None:
    assert td.family_of(ARNS[0]) == "wpenv-acme"
    assert td.TaskDefinition().gone == {"ClientException"}


def test_every_task_shares_the_tenants_salts_and_admin_from_its_site_secret() -> None:
    """Salts per container would sign a user out whenever another task answers."""
    container = _container(td.desired_task_definition(_ctx()))
    refs = {s["name"]: s["valueFrom"] for s in container["secrets"]}
    for key in ("AUTH_KEY", "SECURE_AUTH_KEY", "LOGGED_IN_KEY", "NONCE_KEY",
                "AUTH_SALT", "SECURE_AUTH_SALT", "LOGGED_IN_SALT", "NONCE_SALT"):
        assert refs[f"WORDPRESS_{key}"] == f"{SITE}:{key}::"
    assert refs["WORDPRESS_ADMIN_USER"] == f"{SITE}:admin_user::"
    assert refs["WORDPRESS_ADMIN_PASSWORD"] == f"{SITE}:admin_password::"
    assert refs["WORDPRESS_ADMIN_EMAIL"] == f"{SITE}:admin_email::"


def test_wordpress_lives_under_the_prefix_at_the_tenants_url() -> None:
    doc = td.desired_task_definition(_ctx(routing={"pathPrefix": "/shop"}),
                                     "https://lb.example/shop/")
    container = _container(doc)
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env["WPENV_SITE_URL"] == "https://lb.example/shop/"
    assert env["WPENV_PATH_PREFIX"] == "/shop"
    assert "define('WP_HOME'" in env["WORDPRESS_CONFIG_EXTRA"]
    assert "define('WP_SITEURL'" in env["WORDPRESS_CONFIG_EXTRA"]
    assert "localhost/shop/wp-login.php" in container["healthCheck"]["command"][1]
    unplaced = _container(td.desired_task_definition(_ctx()))
    assert {e["name"]: e["value"] for e in unplaced["environment"]}["WPENV_PATH_PREFIX"] == "/acme"


def test_the_task_definition_waits_for_the_site_secret() -> None:
    ids = {k: v for k, v in IDS.items() if k != "siteSecretArn"}
    with pytest.raises(TransientError) as caught:
        td.desired_task_definition(_ctx(ids=ids))
    assert "siteSecretArn" in str(caught.value)
