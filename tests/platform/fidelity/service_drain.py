"""ECS services drain before their name can be used again.

After DeleteService a service with tasks is DRAINING until they stopped, then INACTIVE;
"If you attempt to create a new service with the same name as an existing service in
either ACTIVE or DRAINING status, you receive an error" (ECS API Reference,
DeleteService). For a DRAINING one ECS answers InvalidParameterException "Unable to Start
a service that is still Draining.". moto marks a deleted service INACTIVE at once and lets
CreateService replace any service; the simulator keeps a deleted service DRAINING for
WPENV_ECS_DRAIN_SECONDS, and this rule refuses to create one of its name meanwhile.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from moto.ecs.models import ecs_backends

from tests.platform.fidelity import scope

if TYPE_CHECKING:  # the package imports this module while it defines Refusal
    from tests.platform.fidelity import Refusal

TARGET = "AmazonEC2ContainerServiceV20141113.CreateService"
CODE = "InvalidParameterException"
MESSAGE = "Unable to Start a service that is still Draining."
DRAINING = "DRAINING"


def creation_refusal(ecs: Any, body: dict[str, Any]) -> Refusal | None:
    """ECS's answer to CreateService of a name whose service still drains, or None."""
    from tests.platform.fidelity import Refusal  # noqa: PLC0415 (see the import above)

    if ecs is None:
        return None
    cluster = str(body.get("cluster") or "default").rpartition("/")[2]
    service = ecs.services.get(f"{cluster}:{body.get('serviceName')}")
    if service is not None and service.status == DRAINING:
        return Refusal(400, CODE, MESSAGE)
    return None


def refuse(request: Any) -> Refusal | None:
    """Refuse CreateService while a service of that name is DRAINING."""
    if request.target != TARGET:
        return None
    return creation_refusal(scope.backend(ecs_backends, request), request.json())
