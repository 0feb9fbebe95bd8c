"""A journal of the AWS API requests the platform's moto server receives, and its readers.

Tests and benchmarks ask "which AWS calls did the operator make, and when" without
touching the operator: the server records each request it answers (wall-clock arrival
time, service, action, read or write, a few identifiers) in a bounded in-memory deque,
and serves it over HTTP next to moto's API:

- ``GET /wpenv/journal?since=<epoch seconds>``: ``{"now": t, "entries": [...]}`` for the
  requests that arrived at or after ``since`` (all of them without it), oldest first;
  ``now`` is the server's clock, a cursor for the next read;
- ``DELETE /wpenv/journal``: forget everything, ``{"cleared": n}``;
- ``GET /wpenv/journal/refusals``: ``{label: count}`` of the error answers since the server
  started (a clear keeps them). A layer that refuses a request names itself in the WSGI
  environ under REFUSED_BY (``fidelity <rule> <code>``, ``throttle <code>``,
  ``fault <code>``); any other error answer (moto's own) counts as ``error <status>``.

The server half (:class:`Journal`, :func:`journaled`) runs inside motoserver.py; the client
half (:func:`read_journal`, :func:`clear_journal`, :func:`writes`, :func:`reads`,
:func:`matching`) is plain HTTP for any process.

How a request is described:

- ``service``: the SigV4 signing name from the credential scope (``ecs``,
  ``application-autoscaling``, ``elasticloadbalancing``, ``iam``, ``s3``, ...); boto3 signs
  every call, so this names the API exactly as AWS does.
- ``action``: for JSON protocols the operation after the dot of ``X-Amz-Target``
  (``UpdateService``); for query protocols (EC2, ELBv2, IAM, STS) the ``Action`` parameter;
  for REST protocols (S3, EFS, Lambda) ``METHOD /path`` plus the query's key names
  (``PUT /bucket/key?tagging``).
- ``write``: one rule. An action is a read when its name starts with a prefix in
  READ_PREFIXES (Describe, List, Get, Head, BatchGet, Search, Lookup, Query, Scan) and a
  REST request is a read when its method is GET, HEAD or OPTIONS; everything else is a
  write (including calls that change nothing but are not reads by name, e.g. AssumeRole).
- ``ids``: identifiers to filter on. JSON bodies: the top-level keys in JSON_KEYS; query
  bodies: the parameters in QUERY_KEYS, list members (``Names.member.1``, ``GroupId.2``)
  joined with commas under the base name (``Names``). Values are strings.
- ``status``: the HTTP status of the answer; null while the request is in flight.
"""

from __future__ import annotations

import io
import json
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = [
    "JOURNAL_PATH",
    "MAX_ENTRIES",
    "REFUSALS_PATH",
    "REFUSED_BY",
    "Entry",
    "Journal",
    "buffer_body",
    "clear_journal",
    "describe_request",
    "is_write",
    "journaled",
    "matching",
    "names",
    "read_journal",
    "read_refusals",
    "reads",
    "writes",
]

JOURNAL_PATH = "/wpenv/journal"
REFUSALS_PATH = "/wpenv/journal/refusals"
# The environ key where the fidelity and chaos layers say they refused the request.
REFUSED_BY = "wpenv.refused_by"
MAX_ENTRIES = 200_000
READ_PREFIXES = (
    "Describe", "List", "Get", "Head", "BatchGet", "Search", "Lookup", "Query", "Scan",
)
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
JSON_KEYS = frozenset({
    # ECS
    "cluster", "service", "services", "serviceName", "resourceArn", "taskDefinition",
    "family",
    # Secrets Manager, Cognito, Application Auto Scaling, CloudWatch Logs
    "SecretId", "Name", "UserPoolId", "ClientId", "ResourceId", "PolicyName",
    "logGroupName",
})
QUERY_KEYS = frozenset({
    # ELBv2
    "Names", "TargetGroupArn", "TargetGroupArns", "RuleArn", "RuleArns", "ListenerArn",
    "LoadBalancerArn", "ResourceArns",
    # EC2
    "GroupId", "GroupName", "VpcId",
    # IAM
    "RoleName", "PolicyName", "PolicyArn", "InstanceProfileName",
})
MAX_PARSED_BODY = 1 << 20  # JSON and query bodies are small; anything larger is not parsed
JSON_TYPE = "application/x-amz-json-"
FORM_TYPE = "application/x-www-form-urlencoded"
ORDER_SLACK_SECONDS = 1.0  # how far request threads may append out of arrival order
IGNORED_PREFIXES = ("/wpenv/", "/moto-api")  # the platform's own endpoints, not AWS


@dataclass
class Entry:
    """One AWS API request as the server saw it (see the module doc for each field)."""

    time: float
    service: str
    action: str
    write: bool
    ids: dict[str, str] = field(default_factory=dict)
    status: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The entry as the journal endpoint serves it."""
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Entry:
        """Read one served entry back."""
        status = raw.get("status")
        return cls(
            time=float(raw["time"]),
            service=str(raw["service"]),
            action=str(raw["action"]),
            write=bool(raw["write"]),
            ids={str(k): str(v) for k, v in (raw.get("ids") or {}).items()},
            status=int(status) if status is not None else None,
        )


def is_write(action: str) -> bool:
    """The module's rule for named actions: anything not named like a read is a write."""
    return not action.startswith(READ_PREFIXES)


# --- describing one request (pure) -----------------------------------------------------------


def _signing_service(environ: WSGIEnvironment) -> str:
    """The service of the SigV4 credential scope (header, or a presigned URL's query)."""
    auth = str(environ.get("HTTP_AUTHORIZATION") or "")
    credential = ""
    if "Credential=" in auth:
        credential = auth.split("Credential=", 1)[1].split(",", 1)[0].strip()
    else:
        query = urllib.parse.parse_qs(str(environ.get("QUERY_STRING") or ""))
        credential = (query.get("X-Amz-Credential") or [""])[0]
    parts = credential.split("/")
    # <key>/<date>/<region>/<service>/aws4_request
    return parts[3] if len(parts) == 5 else "unknown"


def _scalar(value: Any) -> str | None:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, list) and value and all(isinstance(v, str | int) for v in value):
        return ",".join(str(v) for v in value)
    return None


def _json_ids(body: bytes) -> dict[str, str]:
    try:
        doc = json.loads(body or b"{}")
    except ValueError:
        return {}
    if not isinstance(doc, dict):
        return {}
    ids = {}
    for key in JSON_KEYS & doc.keys():
        value = _scalar(doc[key])
        if value is not None:
            ids[key] = value
    return ids


def _query_ids(params: list[tuple[str, str]]) -> dict[str, str]:
    """Identifiers of a query-protocol request; members keep their numbered order."""
    found: dict[str, list[tuple[int, str]]] = {}
    for key, value in params:
        base, _, rest = key.partition(".")
        if base not in QUERY_KEYS:
            continue
        index = rest.rsplit(".", 1)[-1]
        found.setdefault(base, []).append((int(index) if index.isdigit() else 0, value))
    return {base: ",".join(v for _, v in sorted(values)) for base, values in found.items()}


def describe_request(environ: WSGIEnvironment, body: bytes, at: float) -> Entry:
    """The entry for one request that arrived at `at`; `body` is b"" when not buffered."""
    service = _signing_service(environ)
    method = str(environ.get("REQUEST_METHOD") or "GET").upper()
    target = str(environ.get("HTTP_X_AMZ_TARGET") or "")
    content_type = str(environ.get("CONTENT_TYPE") or "")
    query = str(environ.get("QUERY_STRING") or "")
    if target:
        action = target.rpartition(".")[2]
        return Entry(at, service, action, is_write(action), _json_ids(body))
    params = urllib.parse.parse_qsl(query, keep_blank_values=True)
    if content_type.startswith(FORM_TYPE):
        params += urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    action = next((v for k, v in params if k == "Action"), "")
    if action:
        return Entry(at, service, action, is_write(action), _query_ids(params))
    path = str(environ.get("PATH_INFO") or "/")
    keys = sorted({k for k, _ in urllib.parse.parse_qsl(query, keep_blank_values=True)})
    rest = f"{method} {path}" + (f"?{'&'.join(keys)}" if keys else "")
    return Entry(at, service, rest, method not in READ_METHODS)


def buffer_body(environ: WSGIEnvironment) -> bytes:
    """Read a JSON or form body and put an unread copy back for moto; b"" otherwise."""
    content_type = str(environ.get("CONTENT_TYPE") or "")
    if not (content_type.startswith((JSON_TYPE, FORM_TYPE)) or environ.get("HTTP_X_AMZ_TARGET")):
        return b""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return b""
    if length <= 0 or length > MAX_PARSED_BODY:
        return b""
    body: bytes = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


# --- the server half -------------------------------------------------------------------------


class Journal:
    """The bounded record (oldest entries fall off); safe to use from request threads."""

    def __init__(self, maxlen: int = MAX_ENTRIES) -> None:
        self._entries: deque[Entry] = deque(maxlen=maxlen)
        self._lock = threading.Lock()
        self.refusals: Counter[str] = Counter()  # error answers by label, never cleared

    def refused(self, label: str) -> None:
        """Count one error answer."""
        with self._lock:
            self.refusals[label] += 1

    def add(self, entry: Entry) -> None:
        """Append an entry (in arrival order)."""
        with self._lock:
            self._entries.append(entry)

    def since(self, start: float | None = None) -> list[Entry]:
        """Entries that arrived at or after `start` (all without it), oldest first."""
        with self._lock:
            if start is None:
                return list(self._entries)
            picked = []
            for entry in reversed(self._entries):
                # Arrival order, give or take threads racing to append: stop well before.
                if entry.time < start - ORDER_SLACK_SECONDS:
                    break
                if entry.time >= start:
                    picked.append(entry)
        picked.reverse()
        return picked

    def clear(self) -> int:
        """Forget every entry; how many there were."""
        with self._lock:
            count = len(self._entries)
            self._entries.clear()
        return count


def _answer(start_response: StartResponse, status: str, doc: object) -> list[bytes]:
    body = json.dumps(doc).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


def _serve_journal(
    journal: Journal, environ: WSGIEnvironment, start_response: StartResponse
) -> list[bytes]:
    method = str(environ.get("REQUEST_METHOD") or "GET").upper()
    if method == "DELETE":
        return _answer(start_response, "200 OK", {"cleared": journal.clear()})
    if method != "GET":
        return _answer(start_response, "405 Method Not Allowed", {"error": "GET or DELETE"})
    query = urllib.parse.parse_qs(str(environ.get("QUERY_STRING") or ""))
    raw = (query.get("since") or [""])[0]
    try:
        since = float(raw) if raw else None
    except ValueError:
        return _answer(start_response, "400 Bad Request", {"error": "since: epoch seconds"})
    now = time.time()
    entries = [entry.to_json() for entry in journal.since(since)]
    return _answer(start_response, "200 OK", {"now": now, "entries": entries})


def journaled(app: WSGIApplication, journal: Journal) -> WSGIApplication:
    """Record every request to `app` in `journal`, and serve JOURNAL_PATH."""

    def wsgi(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO") or "")
        if path == JOURNAL_PATH:
            return _serve_journal(journal, environ, start_response)
        if path == REFUSALS_PATH:
            return _answer(start_response, "200 OK", dict(journal.refusals))
        if path.startswith(IGNORED_PREFIXES):
            return app(environ, start_response)
        arrived = time.time()
        entry = describe_request(environ, buffer_body(environ), arrived)
        journal.add(entry)

        def recording(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            entry.status = int(status.split(" ", 1)[0])
            if entry.status >= 400:
                journal.refused(str(environ.get(REFUSED_BY) or f"error {entry.status}"))
            return start_response(status, headers, *exc)

        return app(environ, recording)

    return wsgi


# --- the client half -------------------------------------------------------------------------


def read_journal(endpoint: str, since: float | None = None, timeout: float = 30.0) -> list[Entry]:
    """Entries the server at `endpoint` (AWS_ENDPOINT_URL) recorded since `since`."""
    url = endpoint.rstrip("/") + JOURNAL_PATH
    if since is not None:
        url += f"?since={since!r}"
    with urllib.request.urlopen(url, timeout=timeout) as answer:
        doc = json.load(answer)
    return [Entry.from_json(raw) for raw in doc["entries"]]


def read_refusals(endpoint: str, timeout: float = 30.0) -> dict[str, int]:
    """The server's error answers since it started, by label (see the module doc)."""
    with urllib.request.urlopen(endpoint.rstrip("/") + REFUSALS_PATH, timeout=timeout) as got:
        counts = json.load(got)
    return {str(label): int(n) for label, n in counts.items()}


def clear_journal(endpoint: str, timeout: float = 30.0) -> int:
    """Empty the server's journal; how many entries it held."""
    request = urllib.request.Request(endpoint.rstrip("/") + JOURNAL_PATH, method="DELETE")
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return int(json.load(answer)["cleared"])


def writes(entries: Iterable[Entry]) -> list[Entry]:
    """The entries that are writes by the module's rule."""
    return [entry for entry in entries if entry.write]


def reads(entries: Iterable[Entry]) -> list[Entry]:
    """The entries that are reads by the module's rule."""
    return [entry for entry in entries if not entry.write]


def names(entry: Entry, name: str) -> bool:
    """Whether an identifier of `entry` is `name`, or an ARN or path ending in `/name`.

    Exact on purpose: a substring test would let tenant `t1` match `t10`.
    """
    for value in entry.ids.values():
        for part in value.split(","):
            if part == name or part.endswith(f"/{name}"):
                return True
    return False


def matching(
    entries: Iterable[Entry],
    *,
    service: str | None = None,
    action: str | None = None,
    naming: str | None = None,
) -> list[Entry]:
    """Entries of `service` and `action` (when given) whose identifiers name `naming`."""
    return [
        entry
        for entry in entries
        if (service is None or entry.service == service)
        and (action is None or entry.action == action)
        and (naming is None or names(entry, naming))
    ]
