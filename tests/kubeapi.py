"""The operator's Kubernetes API client (wpenv.kube.Api) on the platform's kubeconfig.

The platform's kubeconfig is made after the test process started, so it is named here
rather than found through the environment the process began with.
"""

from __future__ import annotations

import os
from unittest import mock

import kopf

from wpenv import kube


def api_for(kubeconfig: str) -> kube.Api:
    """An Api with the credentials kopf's kubeconfig login reads from `kubeconfig`."""
    with mock.patch.dict(os.environ, {"KUBECONFIG": kubeconfig}):
        info = kopf.login_with_kubeconfig(settings=kopf.OperatorSettings())
    assert info is not None, f"no credentials in {kubeconfig}"
    return kube.Api(info)
