"""What users.json leaves out."""

from __future__ import annotations

from wpenv.archive import users


def test_no_secret_attribute_is_exported() -> None:
    for name in ("custom:api_token", "custom:Password", "custom:secretQuestion"):
        assert users.SECRET_ATTRIBUTE.search(name)
    for name in ("email", "email_verified", "sub", "name", "custom:department"):
        assert not users.SECRET_ATTRIBUTE.search(name)
