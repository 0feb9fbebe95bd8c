"""Named kill points: the process exits hard at one chosen step boundary (crash tests only).

Every boundary where a crash could leave the environment half-done calls
`crashpoint(stage, subject)`. A test starts the operator with `WPENV_CRASH_AT=stage:subject`
(e.g. `created:Database`); when that boundary is reached the process ends with
`os._exit(EXIT_CODE)`, as SIGKILL would end it: no handler finishes, no status is patched,
no `finally` runs. A restarted operator must then converge as if nothing had happened.

**Off in production.** The setting is read once, at import, and honoured only outside a
Kubernetes pod: the kubelet sets KUBERNETES_SERVICE_HOST in every container, so an operator
running in a cluster never exits at a kill point, whatever its environment says. The test
platform runs the operator as a local process (tests/platform/kube.py). Off, a call costs one
function call and one comparison.

The points are derived from the registry (`provisioning`, `deprovisioning`), so a new kind
gets its kill points without anyone listing them:

- `created:<Kind>`: the kind was just created; its ids are not yet in the status;
- `recorded:<Kind>`: the kind's step is done and its ids are in the status;
- `provision:finished`: the pass found everything serving; Active is not yet written
  (kopf patches the status after the handler returns);
- `deprovision:begun`: PendingDeprovision and the archive location are written, no step ran;
- `dump:middle` / `upload:middle`: the database dump / the files tar is streaming to S3,
  its first chunk / entry written, the object not complete;
- `deprovision:after:<Kind>`: the kind is removed (or was already gone), its step reported;
- `deprovision:finished`: Deprovisioned is written, the finalizer not yet released.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Protocol

SETTING = "WPENV_CRASH_AT"
# Set in every container of a pod: where it is set, no kill point is ever honoured.
IN_A_POD = "KUBERNETES_SERVICE_HOST"
EXIT_CODE = 86  # what a test sees instead of a signal: "it died at the kill point"
REACHED = "crash point {point} reached: exiting hard\n"

CREATED = "created"
RECORDED = "recorded"
PROVISION = "provision"
DEPROVISION = "deprovision"
REMOVED = "deprovision:after"
DUMP = "dump"
UPLOAD = "upload"
MIDDLE = "middle"
BEGUN = "begun"
FINISHED = "finished"
# The archive hooks that stream an object long enough to be cut in the middle
# (Resource.archive -> the point inside it); users.json is one small put.
STREAMED = {"database": f"{DUMP}:{MIDDLE}", "files": f"{UPLOAD}:{MIDDLE}"}


def _armed() -> str | None:
    """The kill point this process exits at, or None (unset, or running in a pod)."""
    if os.environ.get(IN_A_POD):
        return None
    return os.environ.get(SETTING) or None


_AT = _armed()


def armed(stage: str, subject: str) -> bool:
    """Whether this process exits at that boundary (what must be written before it)."""
    return _AT is not None and f"{stage}:{subject}" == _AT


def crashpoint(stage: str, subject: str) -> None:
    """Exit hard here if this boundary is the armed kill point; otherwise nothing."""
    if armed(stage, subject):
        os.write(2, REACHED.format(point=_AT).encode())
        os._exit(EXIT_CODE)


class Kind(Protocol):
    """What the derivation reads of a registry kind (wpenv.reconcilers.base.Resource)."""

    @property
    def kind(self) -> str:
        """The kind's name."""

    @property
    def archive(self) -> str | None:
        """Its before-delete archive hook, if it holds data."""


def provisioning(kinds: Iterable[Kind]) -> list[str]:
    """Every provisioning kill point, in the order a provision reaches them."""
    points = [f"{stage}:{k.kind}" for k in kinds for stage in (CREATED, RECORDED)]
    return [*points, f"{PROVISION}:{FINISHED}"]


def deprovisioning(kinds: Iterable[Kind]) -> list[str]:
    """Every deprovisioning kill point, in the order a deletion reaches them."""
    points = [f"{DEPROVISION}:{BEGUN}"]
    for k in reversed(list(kinds)):
        if k.archive in STREAMED:
            points.append(STREAMED[k.archive])
        points.append(f"{REMOVED}:{k.kind}")
    return [*points, f"{DEPROVISION}:{FINISHED}"]
