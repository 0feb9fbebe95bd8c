"""Single sign-on planning without AWS: URLs, the plugin's settings, the role map."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from wpenv import sso
from wpenv.api.models import parse_spec
from wpenv.reconcilers.task_definition import BASE_CONFIG

URL = "http://alb.example.internal:8080/acme/"


def _settings(**changes: object) -> dict[str, str]:
    arguments: dict[str, object] = {
        "region": "eu-west-1",
        "user_pool_id": "eu-west-1_AbC123",
        "client_id": "4l1ent1d",
        "domain_prefix": "wpenv-acme-1a2b3c4d",
        "logout_url": URL,
        "groups": ["Admin", "Editor", "Viewer"],
        **changes,
    }
    return sso.sso_settings(**arguments)  # type: ignore[arg-type]


def test_endpoints_are_the_hosted_ui_of_the_prefix_domain() -> None:
    env = _settings()
    base = "https://wpenv-acme-1a2b3c4d.auth.eu-west-1.amazoncognito.com"
    assert env["OIDC_ENDPOINT_LOGIN_URL"] == f"{base}/oauth2/authorize"
    assert env["OIDC_ENDPOINT_TOKEN_URL"] == f"{base}/oauth2/token"
    assert env["OIDC_ENDPOINT_USERINFO_URL"] == f"{base}/oauth2/userInfo"
    assert env["OIDC_ENDPOINT_LOGOUT_URL"] == (
        f"{base}/logout?client_id=4l1ent1d"
        "&logout_uri=http%3A%2F%2Falb.example.internal%3A8080%2Facme%2F"
    )
    assert env["WPENV_OIDC_ISSUER"] == (
        "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123"
    )


def test_plugin_behaviour_settings() -> None:
    env = _settings()
    assert env["OIDC_CLIENT_ID"] == "4l1ent1d"
    assert env["OIDC_CLIENT_SCOPE"] == "openid email profile"
    assert env["OIDC_LOGIN_TYPE"] == "button"
    assert env["OIDC_CREATE_IF_DOES_NOT_EXIST"] == "1"
    assert env["OIDC_LINK_EXISTING_USERS"] == "1"
    # The secret is injected by ECS from Secrets Manager, never planned here.
    assert "OIDC_CLIENT_SECRET" not in env


def test_every_plugin_variable_becomes_a_constant_and_the_snippet_holds_no_data() -> None:
    env = _settings()
    extra = env["WORDPRESS_CONFIG_EXTRA"]
    for name in sso.PLUGIN_CONSTANTS:
        assert f"'{name}'" in extra
    planned = {name for name in env if name.startswith("OIDC_")}
    assert planned | {"OIDC_CLIENT_SECRET"} == set(sso.PLUGIN_CONSTANTS)
    # One text for every tenant: no id, URL or client data in it.
    for value in ("4l1ent1d", "eu-west-1_AbC123", "wpenv-acme", "alb.example"):
        assert value not in extra
    assert "WPENV_OIDC_ROLE_MAP" in extra and "<?php" not in extra
    assert extra.count("(") == extra.count(")")
    assert extra.count("{") == extra.count("}")
    assert extra.count("[") == extra.count("]")
    assert not re.search(r"@[A-Z_]+@", extra), "a placeholder was left in"


def test_role_map_keeps_precedence_order_and_falls_back_to_subscriber() -> None:
    env = _settings(groups=["Editor", "Admin", "Authors", "Admin"])
    assert list(json.loads(env["WPENV_OIDC_ROLE_MAP"]).items()) == [
        ("Editor", "editor"), ("Admin", "administrator"), ("Authors", "subscriber"),
    ]
    assert sso.role_for("Viewer") == "subscriber"


def test_client_urls_derive_from_the_tenant_url_unless_the_spec_names_them() -> None:
    spec = parse_spec({"tenantId": "acme"})
    assert sso.callback_urls(spec, URL) == [
        URL + "wp-admin/admin-ajax.php?action=openid-connect-authorize"
    ]
    assert sso.logout_urls(spec, URL) == [URL]
    named = parse_spec({
        "tenantId": "acme",
        "identity": {"callbackUrls": ["https://a/cb", "https://a/cb", "https://b/cb"],
                     "logoutUrls": ["https://a/"]},
    })
    assert sso.callback_urls(named, URL) == ["https://a/cb", "https://b/cb"]
    assert sso.logout_urls(named, URL) == ["https://a/"]


# What must not change the PHP or reach beyond its own value: quotes, PHP's closing tag,
# variables, backslashes, newlines, query separators.
HOSTILE = "x'); exit(3); /* \"?><?php exit(4); $HOME \\ \n&logout_uri=https://evil/#"


def test_hostile_values_change_no_php_and_stay_inside_their_parameter() -> None:
    plain, hostile = _settings(), _settings(client_id=HOSTILE, logout_url=HOSTILE,
                                            groups=["Admin", HOSTILE])
    assert hostile["WORDPRESS_CONFIG_EXTRA"] == plain["WORDPRESS_CONFIG_EXTRA"]
    logout = urlsplit(hostile["OIDC_ENDPOINT_LOGOUT_URL"])
    assert (logout.fragment, logout.path) == ("", "/logout")
    assert parse_qs(logout.query) == {"client_id": [HOSTILE], "logout_uri": [HOSTILE]}
    assert json.loads(hostile["WPENV_OIDC_ROLE_MAP"]) == {
        "Admin": "administrator", HOSTILE: "subscriber"}


@pytest.mark.parametrize("extra", [sso.CONFIG_EXTRA, BASE_CONFIG + sso.CONFIG_EXTRA],
                         ids=["sso", "as-the-task-definition-has-it"])
def test_the_config_extra_is_valid_php(extra: str, tmp_path: Path, php: str) -> None:
    path = tmp_path / "extra.php"
    path.write_text("<?php\n" + extra)
    lint = subprocess.run([php, "-l", str(path)], capture_output=True, text=True,
                          check=False)
    assert lint.returncode == 0 and "No syntax errors" in lint.stdout, lint.stdout + lint.stderr


# Evaluates WORDPRESS_CONFIG_EXTRA as the image's wp-config.php does, then reports the
# constants it defined and whether the role hook was registered.
EVALUATE = """
eval(getenv('WORDPRESS_CONFIG_EXTRA'));
$out = array();
foreach (json_decode($argv[1], true) as $name) {
    $out[$name] = defined($name) ? constant($name) : null;
}
$out['hooked'] = count($GLOBALS['wp_filter'][$argv[2]][10]);
echo json_encode($out);
"""


def test_evaluated_hostile_values_become_the_constants_byte_for_byte(php: str) -> None:
    env = {**_settings(client_id=HOSTILE, logout_url=HOSTILE),
           sso.SECRET_VARIABLE: HOSTILE + "ü"}
    done = subprocess.run(
        [php, "-r", EVALUATE, "--", json.dumps(sso.PLUGIN_CONSTANTS),
         "openid-connect-generic-update-user-using-current-claim"],
        env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    seen = json.loads(done.stdout)
    assert seen.pop("hooked") == 1
    assert seen == {name: env[name] for name in sso.PLUGIN_CONSTANTS}
