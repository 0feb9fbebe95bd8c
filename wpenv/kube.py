"""Writes to the Kubernetes API that cannot wait for the end of a handler.

kopf applies a handler's status patch when the handler returns; identifiers of freshly
created AWS resources must reach the status before that (a crash in between must not lose
them), so they are written at once through the official client.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import kubernetes

from wpenv.api.models import GROUP, PLURAL, VERSION


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
