"""Pure planning for single sign-on: Cognito URLs, OAuth client URLs, WordPress plugin settings.

WordPress signs users in through the "OpenID Connect Generic Client" plugin
(daggerhart/openid-connect-generic). The plugin takes its settings from PHP constants named
OIDC_* when they are defined, and then ignores (and never stores) what an administrator
types on its settings page, so a tenant cannot drift away from its own user pool. ECS can
only pass environment variables, so `CONFIG_EXTRA` - evaluated by the official wordpress
image's wp-config.php (WORDPRESS_CONFIG_EXTRA) - turns them into constants, and maps
Cognito groups to WordPress roles at every sign-in.

The client secret is not in here: ECS injects it from Secrets Manager as OIDC_CLIENT_SECRET
when a task starts, so it never appears in the task definition. No I/O in this module.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from urllib.parse import quote

from wpenv.api.models import WordPressEnvironmentSpec

# The plugin's redirect URI below the WordPress URL (its README, "What is the client's
# Redirect URI?"); Cognito accepts a query string in a callback URL.
REDIRECT_PATH = "wp-admin/admin-ajax.php?action=openid-connect-authorize"
SCOPES = ("openid", "email", "profile")
# WordPress role of each default group; any other group maps to the least privilege.
DEFAULT_ROLES = {"Admin": "administrator", "Editor": "editor", "Viewer": "subscriber"}
FALLBACK_ROLE = "subscriber"

# The constants the plugin reads (its `environment_settings`), in the order CONFIG_EXTRA
# defines them. OIDC_CLIENT_SECRET comes from the task's `secrets`, the rest from here.
PLUGIN_CONSTANTS = (
    "OIDC_CLIENT_ID",
    "OIDC_CLIENT_SECRET",
    "OIDC_ENDPOINT_LOGIN_URL",
    "OIDC_ENDPOINT_TOKEN_URL",
    "OIDC_ENDPOINT_USERINFO_URL",
    "OIDC_ENDPOINT_LOGOUT_URL",
    "OIDC_CLIENT_SCOPE",
    "OIDC_LOGIN_TYPE",
    "OIDC_CREATE_IF_DOES_NOT_EXIST",
    "OIDC_LINK_EXISTING_USERS",
)
SECRET_VARIABLE = "OIDC_CLIENT_SECRET"  # noqa: S105 (a variable's name)
SECRET_KEY = "client_secret"  # noqa: S105 (the JSON key in the client secret)
ROLE_MAP_VARIABLE = "WPENV_OIDC_ROLE_MAP"
ISSUER_VARIABLE = "WPENV_OIDC_ISSUER"
CONFIG_EXTRA_VARIABLE = "WORDPRESS_CONFIG_EXTRA"

# PHP evaluated by wp-config.php. It holds no tenant data (the same text for every tenant)
# and no secret: it reads the environment at run time. The role hook is registered the way
# WordPress supports before plugins load (a pre-initialised $wp_filter entry); it runs after
# the plugin stored the ID token's claims, whose `cognito:groups` lists the user's groups.
# The first group of the role map (ordered by group precedence) the user belongs to wins;
# a user in no group keeps the role WordPress gave them.
CONFIG_EXTRA = """\
foreach (@CONSTANTS@ as $wpenv_oidc_name) {
    $wpenv_oidc_value = getenv($wpenv_oidc_name);
    if ($wpenv_oidc_value !== false && !defined($wpenv_oidc_name)) {
        define($wpenv_oidc_name, $wpenv_oidc_value);
    }
}
unset($wpenv_oidc_name, $wpenv_oidc_value);
$GLOBALS['wp_filter']['openid-connect-generic-update-user-using-current-claim'][10][] = array(
    'accepted_args' => 1,
    'function' => static function ($user) {
        $map = json_decode((string) getenv('@ROLE_MAP@'), true);
        $claim = get_user_meta($user->ID, 'openid-connect-generic-last-id-token-claim', true);
        $groups = (is_array($claim) && isset($claim['cognito:groups']))
            ? (array) $claim['cognito:groups'] : array();
        if (!is_array($map) || !$groups) {
            return;
        }
        $role = '@FALLBACK@';
        foreach ($map as $group => $mapped) {
            if (in_array($group, $groups, true)) {
                $role = $mapped;
                break;
            }
        }
        $user->set_role($role);
    },
);
""".replace(
    "@CONSTANTS@", "array(" + ", ".join(f"'{name}'" for name in PLUGIN_CONSTANTS) + ")"
).replace("@ROLE_MAP@", ROLE_MAP_VARIABLE).replace("@FALLBACK@", FALLBACK_ROLE)


def unique(items: Iterable[str]) -> list[str]:
    """`items` without repeats, first occurrence kept (a spec may name a group twice)."""
    return list(dict.fromkeys(items))


def role_for(group: str) -> str:
    """The WordPress role a Cognito group grants."""
    return DEFAULT_ROLES.get(group, FALLBACK_ROLE)


def role_map(groups: Sequence[str]) -> dict[str, str]:
    """Group -> WordPress role, in precedence order (the spec's order)."""
    return {group: role_for(group) for group in unique(groups)}


def callback_urls(spec: WordPressEnvironmentSpec, tenant_url: str) -> list[str]:
    """The app client's callback URLs: the spec's, or the plugin's redirect URI."""
    return unique(spec.identity.callback_urls) or [tenant_url + REDIRECT_PATH]


def logout_urls(spec: WordPressEnvironmentSpec, tenant_url: str) -> list[str]:
    """The app client's sign-out URLs: the spec's, or the tenant's front page."""
    return unique(spec.identity.logout_urls) or [tenant_url]


def hosted_ui(domain_prefix: str, region: str) -> str:
    """Base URL of the Cognito hosted UI and OAuth endpoints of a prefix domain."""
    return f"https://{domain_prefix}.auth.{region}.amazoncognito.com"


def issuer(region: str, user_pool_id: str) -> str:
    """The `iss` of the pool's tokens (its OpenID discovery document lives below it)."""
    return f"https://cognito-idp.{region}.amazonaws.com/{user_pool_id}"


def sso_settings(
    *,
    region: str,
    user_pool_id: str,
    client_id: str,
    domain_prefix: str,
    logout_url: str,
    groups: Sequence[str],
) -> dict[str, str]:
    """The container's plain (non-secret) environment for the plugin, by variable name.

    `logout_url` is where Cognito sends the browser after sign-out; it must be one of the
    client's sign-out URLs.
    """
    base = hosted_ui(domain_prefix, region)
    return {
        "OIDC_CLIENT_ID": client_id,
        "OIDC_ENDPOINT_LOGIN_URL": f"{base}/oauth2/authorize",
        "OIDC_ENDPOINT_TOKEN_URL": f"{base}/oauth2/token",
        "OIDC_ENDPOINT_USERINFO_URL": f"{base}/oauth2/userInfo",
        # Both values quoted: neither may add a parameter Cognito would read.
        "OIDC_ENDPOINT_LOGOUT_URL": f"{base}/logout?client_id={_quote(client_id)}"
        f"&logout_uri={_quote(logout_url)}",
        "OIDC_CLIENT_SCOPE": " ".join(SCOPES),
        "OIDC_LOGIN_TYPE": "button",  # keep the password form for break-glass admins
        "OIDC_CREATE_IF_DOES_NOT_EXIST": "1",
        "OIDC_LINK_EXISTING_USERS": "1",
        ISSUER_VARIABLE: issuer(region, user_pool_id),
        ROLE_MAP_VARIABLE: json.dumps(role_map(groups), separators=(",", ":")),
        CONFIG_EXTRA_VARIABLE: CONFIG_EXTRA,
    }


def _quote(url: str) -> str:
    """Percent-encode a URL for use as one query parameter value."""
    return quote(url, safe="")
