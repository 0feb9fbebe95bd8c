"""Writes to the Kubernetes API that cannot wait for the end of a handler, and one read.

kopf applies a handler's status patch when the handler returns; identifiers of freshly
created AWS resources must reach the status before that (a crash in between must not lose
them), so they are written at once through the official client. `fetch` reads the object
as it is now, and `unavailable` / `gone` say what the client's errors mean (the engine's
`classify` makes the first transient; the use cases end quietly on the second).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import kubernetes
import urllib3

from wpenv.api.models import GROUP, PLURAL, VERSION

# Answers after which the same request may work later: throttled, or the server (or an
# aggregated API, an etcd behind it) not ready. Status 0: the client had no answer at all.
RETRYABLE_STATUS = frozenset({0, 408, 429, 500, 502, 503, 504})
NOT_FOUND = 404


def load_config() -> None:
    """In-cluster credentials when running in a pod, else the KUBECONFIG file."""
    try:
        kubernetes.config.load_incluster_config()
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config()


def resource_recorder(namespace: str, name: str) -> Callable[[Mapping[str, Any]], None]:
    """A function that merges identifiers into status.resources immediately."""
    api = kubernetes.client.CustomObjectsApi()

    def record(ids: Mapping[str, Any]) -> None:
        api.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURAL, name, {"status": {"resources": dict(ids)}}
        )

    return record


def status_writer(namespace: str, name: str) -> Callable[[Mapping[str, Any]], None]:
    """A function that merges fields into the status at once (deprovisioning's progress)."""
    api = kubernetes.client.CustomObjectsApi()

    def write(fields: Mapping[str, Any]) -> None:
        if fields:
            api.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, PLURAL, name, {"status": dict(fields)}
            )

    return write


def unavailable(exc: BaseException) -> bool:
    """Whether a Kubernetes client error means the API server could not be reached or
    was not ready (refused, reset, timed out, 5xx, throttled): a later call may work."""
    if isinstance(exc, kubernetes.client.exceptions.ApiException):
        return exc.status in RETRYABLE_STATUS
    # MaxRetryError, ProtocolError, the timeouts: what urllib3 raises without an answer.
    return isinstance(exc, urllib3.exceptions.HTTPError)


def gone(exc: BaseException) -> bool:
    """Whether a Kubernetes client error says the object is not there (404)."""
    return (isinstance(exc, kubernetes.client.exceptions.ApiException)
            and exc.status == NOT_FOUND)


def fetch(namespace: str, name: str) -> Mapping[str, Any] | None:
    """The environment as the API server has it now, or None when it does not exist.

    One request, for a pass that is about to act on an event that may be stale (an operator
    that was paused works through the events it missed, of objects that may be gone). A
    list by name, not a get: the install's ClusterRole grants list and watch, as kopf needs.
    """
    api = kubernetes.client.CustomObjectsApi()
    found = api.list_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, field_selector=f"metadata.name={name}"
    )
    items: list[Mapping[str, Any]] = list(found.get("items") or [])
    return items[0] if items else None
