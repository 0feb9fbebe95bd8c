"""The tenant's WordPress secrets in Secrets Manager: its keys and salts, its admin (HLD 6.2).

WordPress signs its cookies and nonces with eight keys and salts. Each container of the
official image invents its own when none are given, so a sign-in made on one task is
refused by the next: the tenant's tasks must share one set. The admin's login (HLD 6.2:
"WordPress admin: Secrets Manager, rotation on request") lives beside them, for the
image's first install and for the person who signs in. Both are born here, once, when the
secret is created, and the task definition names each key by ARN, so no value ever
appears in it.

A secret found without some of the keys (an older operator's, a hand-made one) gets the
missing ones added and keeps the rest: replacing a salt would sign every user out, and a
new admin password would not match the installed site. Values are only checked for
presence, never compared, logged or put into an Observation. Finding, restoring,
re-tagging, the forced deletion and the orphan listing (only names shaped like
`wpenv/<tenant>/wordpress`) are `secret_store`'s.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from wpenv import aws
from wpenv.plan import Names
from wpenv.reconcilers.base import Context, Observation
from wpenv.reconcilers.secret_store import NOT_FOUND, StoredSecret, secret_string

log = logging.getLogger(__name__)

# WordPress's keys and salts (wp-config.php); the image reads each as WORDPRESS_<KEY>.
SALT_KEYS = (
    "AUTH_KEY", "SECURE_AUTH_KEY", "LOGGED_IN_KEY", "NONCE_KEY",
    "AUTH_SALT", "SECURE_AUTH_SALT", "LOGGED_IN_SALT", "NONCE_SALT",
)
ADMIN_USER = "admin_user"
ADMIN_PASSWORD = "admin_password"  # noqa: S105 - the JSON key's name, not a password
ADMIN_EMAIL = "admin_email"
KEYS = (*SALT_KEYS, ADMIN_USER, ADMIN_PASSWORD, ADMIN_EMAIL)
ADMIN_NAME = "wpenv-admin"
SALT_BYTES = 48  # token_urlsafe(48): 64 characters, the length WordPress's own generator uses
PASSWORD_BYTES = 24

DESCRIPTION = "WordPress keys, salts and admin login of environment {namespace}/{name}"
STALE_KEYS = "secret {name} lacks {keys}"
UNREADABLE = "secret {name} does not hold a JSON object"


def admin_email(names: Names) -> str:
    """The admin's address: nothing is mailed to it, WordPress's install only needs one."""
    return f"{ADMIN_NAME}@{names.tenant}.invalid"


def new_value(names: Names) -> dict[str, str]:
    """A fresh value: random keys and salts, the admin with a random password (no I/O)."""
    value = {key: secrets.token_urlsafe(SALT_BYTES) for key in SALT_KEYS}
    value.update({ADMIN_USER: ADMIN_NAME, ADMIN_PASSWORD: secrets.token_urlsafe(PASSWORD_BYTES),
                  ADMIN_EMAIL: admin_email(names)})
    return value


def missing_keys(value: Mapping[str, Any]) -> list[str]:
    """The keys the value lacks or holds empty (their names only)."""
    return [key for key in KEYS if not value.get(key)]


def _current(ctx: Context, arn: str) -> dict[str, Any] | None:
    """The current value parsed; {} without a current version; None when not an object."""
    try:
        text = secret_string(ctx, "SiteSecret", arn)  # through the shared cache
    except ClientError as exc:
        if aws.error_code(exc) == NOT_FOUND:
            return {}
        raise
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class SiteSecret(StoredSecret, group="Compute", ids=("siteSecretArn",)):
    """Secrets Manager secret with one tenant's WordPress keys, salts and admin ("Compute")."""

    description = DESCRIPTION

    named = "site_secret"  # wpenv/<tenant>/wordpress

    def value_problems(self, ctx: Context, arn: str, described: Mapping[str, Any]) -> list[str]:
        """Stale when a key is missing (by name; no value is compared or reported)."""
        name = ctx.names.site_secret
        value = _current(ctx, arn)
        if value is None:
            return [UNREADABLE.format(name=name)]
        missing = missing_keys(value)
        return [STALE_KEYS.format(name=name, keys=", ".join(missing))] if missing else []

    def create(self, ctx: Context, observed: Observation) -> None:
        """Create the secret with fresh values; adopt (or restore) the one observe found."""
        self.create_or_adopt(ctx, observed, lambda: json.dumps(new_value(ctx.names)),
                             lambda found: self._converge(ctx, found))

    def update(self, ctx: Context, observed: Observation) -> None:
        """Add the missing keys (keeping every present one) and restore our tags."""
        self._converge(ctx, observed.found)

    def _converge(self, ctx: Context, described: Mapping[str, Any]) -> None:
        arn = self.take_over(ctx, described)
        value = _current(ctx, arn) or {}
        if missing_keys(value):
            fresh = {**new_value(ctx.names), **{k: v for k, v in value.items() if v}}
            ctx.clients.secretsmanager.put_secret_value(SecretId=arn,
                                                        SecretString=json.dumps(fresh))
            log.info("added missing keys to secret %s", ctx.names.site_secret)
        self.repair_tags(ctx, arn, described)
