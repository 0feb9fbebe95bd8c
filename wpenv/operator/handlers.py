"""kopf handlers: thin adapters from Kubernetes events to the domain code.

Each handler reads what it needs from the event, calls one function that does the work,
and writes the status patch that function returns. Policy lives elsewhere.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from wpenv.api.models import GROUP, PLURAL, VERSION, Phase
from wpenv.operator import status as st

FINALIZER = f"{GROUP}/finalizer"
log = logging.getLogger(__name__)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    """Keep kopf's bookkeeping in our annotations, and name the finalizer after our group.

    Annotations rather than status.kopf: the status schema is strict (pruned), and the
    status belongs to what the operator observed, not to its handler progress.
    """
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.posting.level = logging.INFO
    settings.watching.server_timeout = 300


def accept(status: dict[str, Any], generation: int | None) -> dict[str, Any]:
    """A new manifest: record that it was seen and is waiting to be provisioned."""
    if status.get("phase") not in (None, Phase.PENDING_PROVISIONING.value):
        return {}
    return st.status_patch(
        status,
        generation,
        phase=Phase.PENDING_PROVISIONING,
        conditions=[
            st.Cond(
                st.READY,
                st.FALSE,
                "PendingProvisioning",
                "Accepted; waiting to be provisioned",
            )
        ],
    )


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
def on_create(
    status: kopf.Status, meta: kopf.Meta, patch: kopf.Patch, **_: Any
) -> None:
    """Record observedGeneration and PendingProvisioning for a manifest seen for the first time."""
    changes = accept(dict(status), meta.get("generation"))
    if changes:
        patch.status.update(changes)
        log.info("Accepted %s/%s", meta.get("namespace"), meta.get("name"))


@kopf.on.delete(GROUP, VERSION, PLURAL)
def on_delete(meta: kopf.Meta, **_: Any) -> None:
    """Holding the finalizer: nothing has been created yet, so there is nothing to retire."""
    log.info("Released %s/%s", meta.get("namespace"), meta.get("name"))


@kopf.on.probe(id="ready")
def probe(**_: Any) -> bool:
    """The liveness endpoint answers only while the event loop runs handlers."""
    return True
