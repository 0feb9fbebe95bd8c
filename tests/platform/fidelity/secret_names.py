"""Secrets Manager keeps a deleted secret's name reserved for its recovery window.

DeleteSecret without ForceDeleteWithoutRecovery only schedules the deletion (7 to 30
days); until then the secret can be restored (RestoreSecret), and CreateSecret with its
name fails with InvalidRequestException "You can't create this secret because a secret
with this name is already scheduled for deletion." (API Reference, DeleteSecret and
InvalidRequestException: "The secret is scheduled for deletion"). moto answers
ResourceExistsException instead, a code that means "it exists, adopt it"; this rule gives
AWS's answer. A forced delete frees the name (moto removes the secret at once).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from moto.secretsmanager.models import FakeSecret, secretsmanager_backends

from tests.platform.fidelity import scope

if TYPE_CHECKING:  # the package imports this module while it defines Refusal
    from tests.platform.fidelity import Refusal

TARGET = "secretsmanager.CreateSecret"
CODE = "InvalidRequestException"
MESSAGE = (
    "You can't create this secret because a secret with this name is already scheduled "
    "for deletion."
)


def creation_refusal(backend: Any, name: str) -> Refusal | None:
    """AWS's answer to CreateSecret of `name` in `backend` (moto's region backend), or None."""
    from tests.platform.fidelity import Refusal  # noqa: PLC0415 (see the import above)

    if backend is None or not name:
        return None
    secret = backend.secrets.get(name)
    if isinstance(secret, FakeSecret) and secret.name == name and secret.is_deleted():
        return Refusal(400, CODE, MESSAGE)
    return None


def refuse(request: Any) -> Refusal | None:
    """Refuse CreateSecret of a name whose secret is scheduled for deletion."""
    if request.target != TARGET:
        return None
    name = str(request.json().get("Name") or "")
    return creation_refusal(scope.backend(secretsmanager_backends, request), name)
