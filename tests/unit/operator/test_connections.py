"""kopf's session to the Kubernetes API: kopf's credentials, a capped connection pool."""

from __future__ import annotations

import asyncio

import kopf

from wpenv.operator import connections


def test_the_session_caps_its_connections_and_keeps_kopfs_credentials() -> None:
    info = kopf.ConnectionInfo(server="https://127.0.0.1:6443", token="t0k",
                               default_namespace="ns", priority=3)

    async def build() -> tuple[int, str, str, str | None, int]:
        made = connections.session(info, 7)
        try:
            client = made.aiohttp_session
            return (client.connector.limit if client.connector else 0,
                    client.headers["Authorization"], made.server, made.default_namespace,
                    made.priority)
        finally:
            await made.aiohttp_session.close()

    assert asyncio.run(build()) == (7, "Bearer t0k", "https://127.0.0.1:6443", "ns", 3)

