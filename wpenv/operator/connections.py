"""kopf's connections to the Kubernetes API, capped.

kopf's own HTTP session has no connection limit: each request made while the others
are busy opens one more TLS connection, and asyncio keeps a 256 KiB read buffer for each
(`SSLProtocol`). With 400 environments provisioning, 119 of them held 31 MB, the largest
single block of the operator's memory after its imported code. Capped, a request waits
for a free connection instead; kopf's watch streams hold one each, status patches take
milliseconds, so a score is plenty (`Settings.kube_connections`).

The credentials are what kopf's own default login finds (`kube.login`: the official
client's when it is installed, else the service account, else the kubeconfig); only the
session is ours.
"""

from __future__ import annotations

import warnings
from typing import Any

import aiohttp
import kopf

from wpenv import kube


def session(info: kopf.ConnectionInfo, limit: int) -> kopf.AiohttpSession:
    """An aiohttp session with kopf's credentials and at most `limit` connections."""
    with warnings.catch_warnings():  # kopf's own warning about basic auth, as kopf does
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="kopf")
        auth = info.as_aiohttp_basic_auth()
    client = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, ssl=info.as_ssl_context()),
        headers=info.as_http_headers(),
        auth=auth,
        proxy=info.proxy_url,
        trust_env=info.trust_env,
    )
    return kopf.AiohttpSession(
        server=info.server,
        default_namespace=info.default_namespace,
        priority=info.priority,
        expiration=info.expiration,
        aiohttp_session=client,
    )


def login(limit: int, **kwargs: Any) -> kopf.AiohttpSession | None:
    """kopf's default login, through a capped session (None: no credentials found)."""
    info = kube.login(**kwargs)
    return session(info, limit) if info is not None else None
