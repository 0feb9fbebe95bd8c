"""A user pool's users and groups as the archive keeps them (users.json).

Passwords never leave Cognito (no API returns them); attributes whose names look like a
secret are left out as well, so users.json can be read by anyone allowed to read archives.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from wpenv.reconcilers.base import Context

PAGE = 60  # the largest page ListUsers / ListGroups return
EXPORT_FORMAT = "wpenv.users/v1"
SECRET_ATTRIBUTE = re.compile(r"password|secret|token|credential", re.IGNORECASE)


def _paged(call: Any, key: str, token_name: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Items of a Cognito list call that pages with `token_name` (the APIs differ)."""
    token: str | None = None
    while True:
        page = call(**kwargs, **({token_name: token} if token else {}))
        yield from (dict(item) for item in page.get(key) or [])
        token = page.get(token_name)
        if not token:
            return


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else (str(value) if value else None)


def _user(user: Mapping[str, Any], groups: list[str]) -> dict[str, Any]:
    return {
        "username": str(user["Username"]),
        "attributes": {
            str(a["Name"]): a.get("Value")
            for a in user.get("Attributes") or []
            if not SECRET_ATTRIBUTE.search(str(a["Name"]))
        },
        "status": user.get("UserStatus"),
        "enabled": user.get("Enabled"),
        "created": _iso(user.get("UserCreateDate")),
        "groups": sorted(groups),
    }


def export_document(clients: Any, ctx: Context, described: Mapping[str, Any]) -> dict[str, Any]:
    """Every user and group of the pool `described` (DescribeUserPool's UserPool)."""
    idp = clients.cognito_idp
    pid = str(described["Id"])
    groups = list(_paged(idp.list_groups, "Groups", "NextToken", UserPoolId=pid, Limit=PAGE))
    members: dict[str, list[str]] = {}
    for group in groups:
        for user in _paged(idp.list_users_in_group, "Users", "NextToken", UserPoolId=pid,
                           GroupName=group["GroupName"], Limit=PAGE):
            members.setdefault(str(user["Username"]), []).append(str(group["GroupName"]))
    users = [
        _user(user, members.get(str(user["Username"]), []))
        for user in _paged(idp.list_users, "Users", "PaginationToken", UserPoolId=pid,
                           Limit=PAGE)
    ]
    return {
        "format": EXPORT_FORMAT,
        "userPoolId": pid,
        "userPoolName": described.get("Name"),
        "environment": f"{ctx.namespace}/{ctx.name}",
        "tenantId": ctx.names.tenant,
        "exportedAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "groups": [
            {"name": g["GroupName"], "description": g.get("Description"),
             "precedence": g.get("Precedence")}
            for g in groups
        ],
        "users": users,
    }
