"""Amazon Cognito user pools as AWS answers them: redirect URLs and hosted-domain prefixes.

moto stores any callback URL and any domain; Cognito refuses, with InvalidParameterException:
- a callback or sign-out URL over plain http, unless it is http://localhost, http://127.0.0.1
  or http://[::1] (any port): "<url> cannot use the HTTP protocol." (CreateUserPoolClient and
  UpdateUserPoolClient; API Reference, CreateUserPoolClient, CallbackURLs);
- more than 100 callback or sign-out URLs, or one longer than 1024 characters (the
  operation's length constraints, answered as a validation error);
- a prefix domain (CreateUserPoolDomain without CustomDomainConfig) longer than 63
  characters, outside ^[a-z0-9](?:[a-z0-9\\-]{0,61}[a-z0-9])?$, or containing the reserved
  words aws, amazon or cognito ("Domain cannot contain reserved word: aws").
App callback URLs of other schemes (myapp://example) are accepted, as Cognito does.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:  # the package imports this module while it defines Refusal
    from tests.platform.fidelity import Refusal

SERVICE = "AWSCognitoIdentityProviderService."
CLIENT_OPERATIONS = ("CreateUserPoolClient", "UpdateUserPoolClient")
INVALID = "InvalidParameterException"
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
URL_FIELDS = (("CallbackURLs", "callbackURLs"), ("LogoutURLs", "logoutURLs"))
MAX_URLS = 100
MAX_URL_LENGTH = 1024
HTTP_REFUSED = "{url} cannot use the HTTP protocol."
TOO_MANY = (
    "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: "
    "Member must have length less than or equal to {limit}"
)
TOO_LONG = (
    "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: "
    "Member must satisfy constraint: [Member must have length less than or equal to {limit}, "
    "Member must have length greater than or equal to 1]"
)

DOMAIN_PATTERN = r"^[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?$"
MAX_DOMAIN_LENGTH = 63
RESERVED_WORDS = ("aws", "amazon", "cognito")
RESERVED = "Domain cannot contain reserved word: {word}"
BAD_CHARACTER = (
    "The domain name contains an invalid character. Domain names can only contain lower-case "
    "letters, numbers, and hyphens. Please enter a different name that follows this format: "
    + DOMAIN_PATTERN
)
DOMAIN_TOO_LONG = (
    "1 validation error detected: Value '{value}' at 'domain' failed to satisfy constraint: "
    "Member must have length less than or equal to 63"
)


def plain_http_allowed(url: str) -> bool:
    """Whether Cognito takes `url` as a redirect: https, any non-http scheme, or loopback http."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "http":
        return True
    try:
        host = parts.hostname
    except ValueError:
        return False
    return host in LOOPBACK_HOSTS


def url_refusal(client: dict[str, Any]) -> Refusal | None:
    """What Cognito says about an app client's callback and sign-out URLs; None if fine."""
    for key, field in URL_FIELDS:
        urls = [str(url) for url in client.get(key) or []]
        if len(urls) > MAX_URLS:
            return _invalid(TOO_MANY.format(value=urls, field=field, limit=MAX_URLS))
        for url in urls:
            if not 1 <= len(url) <= MAX_URL_LENGTH:
                return _invalid(TOO_LONG.format(value=urls, field=field, limit=MAX_URL_LENGTH))
        for url in urls:
            if not plain_http_allowed(url):
                return _invalid(HTTP_REFUSED.format(url=url))
    return None


def domain_refusal(domain: str) -> Refusal | None:
    """What Cognito says about a prefix domain; None if it would take it."""
    if len(domain) > MAX_DOMAIN_LENGTH:
        return _invalid(DOMAIN_TOO_LONG.format(value=domain))
    if not re.fullmatch(DOMAIN_PATTERN, domain):
        return _invalid(BAD_CHARACTER)
    for word in RESERVED_WORDS:
        if word in domain:
            return _invalid(RESERVED.format(word=word))
    return None


def _invalid(message: str) -> Refusal:
    from tests.platform.fidelity import Refusal  # noqa: PLC0415 (see the import above)

    return Refusal(400, INVALID, message)


def refuse(request: Any) -> Refusal | None:
    """Refuse app clients with URLs Cognito refuses, and prefix domains it refuses."""
    if not request.target.startswith(SERVICE):
        return None
    if request.action in CLIENT_OPERATIONS:
        return url_refusal(request.json())
    if request.action == "CreateUserPoolDomain":
        body = request.json()
        if body.get("CustomDomainConfig"):
            return None  # a custom domain is a full host name, checked by other rules
        return domain_refusal(str(body.get("Domain") or ""))
    return None
