"""The operator's own requests to the Kubernetes API, on the credentials kopf logs in with.

kopf watches and patches through its own session; a few requests cannot go that way. The
identifiers of freshly created AWS resources must reach the status before the handler
returns (a crash in between must not lose them), the leases coordinate processes, and the
orphan scan and inventory audit list every environment. They are made from worker threads,
through `Api`: a urllib3 pool (botocore's HTTP library, loaded anyway) that sends JSON.
`unavailable` and `gone` say what its errors mean (the engine's `classify` makes the first
transient; the use cases end quietly on the second).

Why not the official client: kopf imports `kubernetes.client`, all of its some 800 model
modules, merely because it is installed, and they were about 55 MB of the operator's
memory (a third of it, empty). The requests here need none of them. The credentials are
what kopf's own login finds (`login`): the official client's when it is installed (the
optional `exec-auth` extra, for a kubeconfig whose user runs a plugin such as
`aws eks get-token`), else the pod's service account, else the KUBECONFIG file.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

import kopf
import urllib3

from wpenv.api.models import GROUP, PLURAL, VERSION

log = logging.getLogger(__name__)

# Answers after which the same request may work later: throttled, or the server (or an
# aggregated API, an etcd behind it) not ready. Status 0: the client had no answer at all.
RETRYABLE_STATUS = frozenset({0, 408, 429, 500, 502, 503, 504})
NOT_FOUND = 404
UNAUTHORIZED = 401
JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
NO_CREDENTIALS = ("no Kubernetes credentials: no service account in this pod and no KUBECONFIG"
                  " (or ~/.kube/config)")
CONNECT_SECONDS = 10.0
READ_SECONDS = 60.0
CONNECTION_RETRIES = 2  # a refused or reset connection; never a request that was answered
POOL_SIZE = 10


class ApiError(Exception):
    """An answer of the API server other than 2xx: its status code, reason and message."""

    def __init__(self, status: int, reason: str, message: str = "") -> None:
        super().__init__(f"{status} {reason}: {message}" if message else f"{status} {reason}")
        self.status = status
        self.reason = reason


def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """What kopf's default login finds (the first that has credentials), in its order."""
    kwargs.setdefault("settings", kopf.OperatorSettings())
    kwargs.setdefault("logger", log)
    for way in (kopf.login_via_client, kopf.login_with_service_account,
                kopf.login_with_kubeconfig):
        info = way(**kwargs)
        if info is not None:
            return info
    return None


def _error_of(response: Any) -> ApiError:
    """The API server's Status object as an ApiError (its reason and message, if any)."""
    try:
        status = json.loads(response.data)
    except ValueError:
        status = {}
    if not isinstance(status, dict):
        status = {}
    reason = str(status.get("reason") or response.reason or "Error")
    return ApiError(response.status, reason, str(status.get("message") or ""))


class Api:
    """JSON requests to one API server, safe across threads.

    Logs in on first use (or uses the `info` it was given); an answer 401 (a service
    account token the kubelet rotated) logs in once more and sends the request again.
    """

    def __init__(self, info: kopf.ConnectionInfo | None = None,
                 retries: int = CONNECTION_RETRIES) -> None:
        self._given = info
        self._retries = retries
        self._lock = threading.Lock()
        self._session: tuple[str, urllib3.PoolManager, dict[str, str]] | None = None

    def connect(self) -> None:
        """Find the credentials now (a missing kubeconfig fails at start, not later)."""
        self._current()

    def _current(self) -> tuple[str, urllib3.PoolManager, dict[str, str]]:
        with self._lock:
            if self._session is None:
                info = self._given or login()
                if info is None:
                    raise RuntimeError(NO_CREDENTIALS)
                options: dict[str, Any] = {
                    "num_pools": 2, "maxsize": POOL_SIZE,
                    "retries": urllib3.Retry(total=self._retries, read=0, status=0,
                                             redirect=0, other=0),
                    "timeout": urllib3.Timeout(connect=CONNECT_SECONDS, read=READ_SECONDS),
                }
                if info.server.startswith("https:"):
                    options["ssl_context"] = info.as_ssl_context()
                pool = (urllib3.ProxyManager(info.proxy_url, **options) if info.proxy_url
                        else urllib3.PoolManager(**options))
                self._session = (info.server.rstrip("/"), pool, info.as_http_headers())
            return self._session

    def _forget(self) -> None:
        with self._lock:
            self._session = None

    def request(self, method: str, path: str, *, body: Any = None,
                query: Mapping[str, Any] | None = None, content_type: str = JSON) -> Any:
        """Send one request; the answer's JSON (None when empty), or ApiError."""
        url = path + (f"?{urlencode(dict(query))}" if query else "")
        data = None if body is None else json.dumps(body).encode()
        for attempt in (1, 2):
            server, pool, auth = self._current()
            response = pool.request(
                method, server + url, body=data,
                headers={**auth, "Accept": JSON, "Content-Type": content_type},
            )
            if response.status == UNAUTHORIZED and attempt == 1 and self._given is None:
                self._forget()
                continue
            break
        if response.status >= 400:
            raise _error_of(response)
        return json.loads(response.data) if response.data else None


def environments(namespace: str | None = None, name: str = "", sub: str = "") -> str:
    """The path of WordPressEnvironments: all, a namespace's, one, or one's subresource."""
    path = f"/apis/{GROUP}/{VERSION}"
    path += f"/namespaces/{namespace}/{PLURAL}" if namespace else f"/{PLURAL}"
    if name:
        path += f"/{name}" + (f"/{sub}" if sub else "")
    return path


_DEFAULT: Api | None = None
_DEFAULT_LOCK = threading.Lock()


def api() -> Api:
    """The process's one Api (its connections are shared by every thread)."""
    global _DEFAULT  # noqa: PLW0603  (one pool per process, made on first use)
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = Api()
        return _DEFAULT


def load_config() -> None:
    """Find the process's credentials now: in-cluster, else the KUBECONFIG file."""
    api().connect()


def resource_recorder(namespace: str, name: str) -> Callable[[Mapping[str, Any]], None]:
    """A function that merges identifiers into status.resources immediately."""
    return status_writer(namespace, name, key="resources")


def status_writer(
    namespace: str, name: str, key: str = ""
) -> Callable[[Mapping[str, Any]], None]:
    """A function that merges fields into the status (or one key of it) at once."""

    def write(fields: Mapping[str, Any]) -> None:
        if fields:
            status = {key: dict(fields)} if key else dict(fields)
            api().request("PATCH", environments(namespace, name, "status"),
                          body={"status": status}, content_type=MERGE_PATCH)

    return write


def unavailable(exc: BaseException) -> bool:
    """Whether a Kubernetes request's error means the API server could not be reached or
    was not ready (refused, reset, timed out, 5xx, throttled): a later call may work."""
    if isinstance(exc, ApiError):
        return exc.status in RETRYABLE_STATUS
    # MaxRetryError, ProtocolError, the timeouts: what urllib3 raises without an answer.
    return isinstance(exc, urllib3.exceptions.HTTPError)


def gone(exc: BaseException) -> bool:
    """Whether a Kubernetes request's error says the object is not there (404)."""
    return isinstance(exc, ApiError) and exc.status == NOT_FOUND


def fetch(namespace: str, name: str) -> Mapping[str, Any] | None:
    """The environment as the API server has it now, or None when it does not exist.

    One request, for a pass that is about to act on an event that may be stale (an operator
    that was paused works through the events it missed, of objects that may be gone). A
    list by name, not a get: the install's ClusterRole grants list and watch, as kopf needs.
    """
    found = api().request("GET", environments(namespace),
                          query={"fieldSelector": f"metadata.name={name}"})
    items: list[Mapping[str, Any]] = list((found or {}).get("items") or [])
    return items[0] if items else None
