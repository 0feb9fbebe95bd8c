"""Whether an IAM role may do something: the identity-policy part of IAM's evaluation.

moto stores roles and their policies but never evaluates them for the calls AWS services
make on a role's behalf (ECS reading a task's secrets with its execution role). The
simulator needs that answer, so this is the small part of IAM's policy evaluation logic
(IAM User Guide, "Policy evaluation logic") that such a decision takes, for one role:

- a request is allowed only when a statement of an identity-based policy of the role
  (inline or attached) allows it, and no statement denies it (an explicit deny wins);
- `Action` / `NotAction` and `Resource` / `NotResource` match with the `*` and `?`
  wildcards; actions are case-insensitive, resources are not;
- a statement with a `Condition` is taken to deny when it denies and never to allow:
  the simulator has no request context to evaluate it with, and leaning to "denied"
  keeps a policy that works here from failing on AWS.

Resource-based policies, permissions boundaries and SCPs are out of scope: the operator
writes none of them.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from moto.iam.models import iam_backends

__all__ = ["allowed", "documents_of", "role_documents"]

Document = dict[str, Any]


@lru_cache(maxsize=512)
def _pattern(text: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text)
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.compile(f"^{body}$", flags)


def _listed(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _any_match(patterns: Any, value: str, ignore_case: bool) -> bool:
    return any(_pattern(p, ignore_case).match(value) for p in _listed(patterns))


def _applies(statement: dict[str, Any], action: str, resource: str) -> bool:
    """Whether the statement's action and resource elements cover the request."""
    if "NotAction" in statement:
        if _any_match(statement["NotAction"], action, True):
            return False
    elif not _any_match(statement.get("Action"), action, True):
        return False
    if "NotResource" in statement:
        return not _any_match(statement["NotResource"], resource, False)
    return _any_match(statement.get("Resource"), resource, False)


def _statements(document: Document) -> list[dict[str, Any]]:
    found = document.get("Statement") or []
    return [s for s in (found if isinstance(found, list) else [found]) if isinstance(s, dict)]


def allowed(documents: Iterable[Document], action: str, resource: str) -> bool:
    """Whether identity policies `documents` allow `action` on `resource` (deny wins)."""
    allow = False
    for document in documents:
        for statement in _statements(document):
            if not _applies(statement, action, resource):
                continue
            if statement.get("Effect") == "Deny":
                return False
            if statement.get("Effect") == "Allow" and "Condition" not in statement:
                allow = True
    return allow


def _parse(raw: Any) -> Document | None:
    """A stored policy document as data (IAM keeps what it was sent, maybe URL-encoded)."""
    if isinstance(raw, dict):
        return raw
    text = str(raw or "")
    for candidate in (text, urllib.parse.unquote(text)):
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        return value if isinstance(value, dict) else None
    return None


def documents_of(role: Any) -> list[Document]:
    """The identity policies of a moto Role: its inline ones and the default versions of
    the managed policies attached to it."""
    raw: list[Any] = list(role.policies.values())
    for policy in role.managed_policies.values():
        raw.extend(v.document for v in policy.versions if v.is_default)
    return [doc for doc in (_parse(r) for r in raw) if doc is not None]


def role_documents(role_arn: str) -> list[Document] | None:
    """The identity policies of the role `role_arn` in moto's IAM; None when there is none."""
    parts = role_arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "iam" or not parts[5].startswith("role/"):
        return None
    try:
        role = iam_backends[parts[4]][parts[1]].get_role(parts[5].rsplit("/", 1)[-1])
    except Exception:  # moto's NotFoundException, or an account/partition it does not know
        return None
    return documents_of(role)
