"""EFS recognises a repeated CreateAccessPoint by its client token; moto makes another.

The ClientToken of CreateAccessPoint is "a string of up to 64 ASCII characters that Amazon
EFS uses to ensure idempotent creation" (Amazon EFS API Reference, CreateAccessPoint). A
request whose token is that of an existing access point creates nothing and fails with
AccessPointAlreadyExists, HTTP 409, "Returned if the access point that you are trying to
create already exists, with the creation token you provided in the request"; the error
carries the AccessPointId (the API model's error shape: ErrorCode, Message, AccessPointId).
moto ignores the token and creates a second access point, so a retry after a lost answer
(botocore sends the same body, the same token) would leave two. The reference gives no
message text; this one names the token, as EFS's other conflict messages name theirs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from moto.efs.models import efs_backends

from tests.platform.fidelity import scope
from tests.platform.requests import operation

if TYPE_CHECKING:  # the package imports this module while it defines Refusal
    from tests.platform.fidelity import Refusal

CODE = "AccessPointAlreadyExists"
MESSAGE = "An access point with the client token {token} already exists."


def refuse(request: Any) -> Refusal | None:
    """Refuse a CreateAccessPoint whose ClientToken an existing access point was made with."""
    from tests.platform.fidelity import Refusal  # noqa: PLC0415 (see the import above)

    if request.service != "elasticfilesystem" or request.method != "POST":
        return None
    found = operation(request)
    if found is None or found[0].name != "CreateAccessPoint":
        return None
    token = str(request.json().get("ClientToken") or "")
    backend = scope.backend(efs_backends, request)
    if not token or backend is None:
        return None
    for access_point in list(backend.access_points.values()):
        if access_point.client_token == token:
            return Refusal(409, CODE, MESSAGE.format(token=token), protocol="rest-json",
                           fields=(("AccessPointId", str(access_point.access_point_id)),))
    return None
