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

How a request is described (read once, by tests/platform/requests.py, for every layer of
the server: the journal, chaos and the fidelity rules):

- ``service``: the SigV4 signing name from the credential scope (``ecs``,
  ``application-autoscaling``, ``elasticloadbalancing``, ``iam``, ``s3``, ...); boto3 signs
  every call, so this names the API exactly as AWS does.
- ``action``: for JSON protocols the operation after the dot of ``X-Amz-Target``
  (``UpdateService``); for query protocols (EC2, ELBv2, IAM, STS) the ``Action`` parameter;
  for the tagging API's CBOR protocol the operation at the end of the path (``GetResources``);
  for REST protocols (S3, EFS, Lambda) ``METHOD /path`` plus the query's key names
  (``PUT /bucket/key?tagging``).
- ``write``: one rule. An action is a read when its name starts with a prefix in
  READ_PREFIXES (Describe, List, Get, Head, BatchGet, Search, Lookup, Query, Scan) and a
  REST request is a read when its method is GET, HEAD or OPTIONS; everything else is a
  write (including calls that change nothing but are not reads by name, e.g. AssumeRole).
- ``ids``: identifiers to filter on. JSON bodies: the top-level keys in JSON_KEYS; query
  bodies: the parameters in QUERY_KEYS, list members (``Names.member.1``, ``GroupId.2``)
  joined with commas under the base name (``Names``). Values are strings.
- ``status``: the HTTP status of the answer; null while the request is in flight;
  ``done``: when the answer was sent (epoch seconds), likewise.
- ``exchange`` (only while the server runs with ``WPENV_JOURNAL_EXCHANGES=1``, and only in
  answers to ``?exchanges=1``): the whole request and answer, so a benchmark can replay the
  calls (bench/replay.py): botocore's ``model`` (service) and ``operation`` name, the
  request's ``method``, ``path``, ``query``, the headers that select the operation and the
  body (base64), and the answer's ``headers`` and body. S3 is left out (archives are big).
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from tests.platform.requests import AwsRequest, describe, operation, read

__all__ = [
    "JOURNAL_PATH",
    "MAX_ENTRIES",
    "REFUSALS_PATH",
    "REFUSED_BY",
    "Entry",
    "Journal",
    "clear_journal",
    "describe_request",
    "entry_for",
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
ORDER_SLACK_SECONDS = 1.0  # how far request threads may append out of arrival order
IGNORED_PREFIXES = ("/wpenv/", "/moto-api")  # the platform's own endpoints, not AWS
EXCHANGES_ENV = "WPENV_JOURNAL_EXCHANGES"
# The request headers an exchange keeps: what selects the operation and how to read the body.
KEPT_HEADERS = ("content-type", "x-amz-target", "smithy-protocol", "accept")
MAX_EXCHANGE_BODY = 1 << 20


@dataclass
class Entry:
    """One AWS API request as the server saw it (see the module doc for each field)."""

    time: float
    service: str
    action: str
    write: bool
    ids: dict[str, str] = field(default_factory=dict)
    status: int | None = None
    done: float | None = None
    exchange: dict[str, Any] | None = None

    def to_json(self, exchanges: bool = False) -> dict[str, Any]:
        """The entry as the journal endpoint serves it (the exchange only when asked)."""
        doc = asdict(self)
        if not exchanges:
            doc.pop("exchange")
        return doc

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
            done=float(raw["done"]) if raw.get("done") is not None else None,
            exchange=raw.get("exchange"),
        )


def is_write(action: str) -> bool:
    """The module's rule for named actions: anything not named like a read is a write."""
    return not action.startswith(READ_PREFIXES)


# --- describing one request (pure) -----------------------------------------------------------


def _scalar(value: Any) -> str | None:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, list) and value and all(isinstance(v, str | int) for v in value):
        return ",".join(str(v) for v in value)
    return None


def _json_ids(doc: dict[str, Any]) -> dict[str, str]:
    ids = {}
    for key in JSON_KEYS & doc.keys():
        value = _scalar(doc[key])
        if value is not None:
            ids[key] = value
    return ids


def _query_ids(params: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Identifiers of a query-protocol request; members keep their numbered order."""
    found: dict[str, list[tuple[int, str]]] = {}
    for key, value in params:
        base, _, rest = key.partition(".")
        if base not in QUERY_KEYS:
            continue
        index = rest.rsplit(".", 1)[-1]
        found.setdefault(base, []).append((int(index) if index.isdigit() else 0, value))
    return {base: ",".join(v for _, v in sorted(values)) for base, values in found.items()}


def entry_for(request: AwsRequest, at: float) -> Entry:
    """The entry for one described request that arrived at `at`."""
    if request.protocol == "json":
        ids = _json_ids(request.json())
    elif request.protocol in ("query", "ec2"):
        ids = _query_ids(request.form)
    else:
        ids = {}
    rest = request.protocol not in ("json", "query", "ec2", "rpc-v2-cbor")
    write = request.method not in READ_METHODS if rest else is_write(request.action)
    return Entry(at, request.service, request.action, write, ids)


def describe_request(environ: WSGIEnvironment, body: bytes, at: float) -> Entry:
    """The entry for one request that arrived at `at`; `body` is b"" when not buffered."""
    return entry_for(describe(environ, body), at)


# --- the server half -------------------------------------------------------------------------


class Journal:
    """The bounded record (oldest entries fall off); safe to use from request threads."""

    def __init__(self, maxlen: int = MAX_ENTRIES, exchanges: bool | None = None) -> None:
        """Empty; `exchanges` (default: WPENV_JOURNAL_EXCHANGES=1) keeps whole requests."""
        self.exchanges = (os.environ.get(EXCHANGES_ENV) == "1" if exchanges is None
                          else exchanges)
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
    whole = (query.get("exchanges") or [""])[0] == "1"
    entries = [entry.to_json(whole) for entry in journal.since(since)]
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
        request = read(environ)
        entry = entry_for(request, arrived)
        kept = journal.exchanges and request.service not in ("s3", "unknown")
        if kept:
            entry.exchange = request_exchange(request)
        journal.add(entry)

        def recording(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            entry.status = int(status.split(" ", 1)[0])
            entry.done = time.time()
            if entry.exchange is not None:
                entry.exchange["answer_headers"] = {k.lower(): v for k, v in headers}
            if entry.status >= 400:
                journal.refused(str(environ.get(REFUSED_BY) or f"error {entry.status}"))
            return start_response(status, headers, *exc)

        answered = app(environ, recording)
        return _kept_body(answered, entry) if kept else answered

    return wsgi


def request_exchange(request: AwsRequest) -> dict[str, Any]:
    """The whole of one request, as an exchange keeps it (the answer is added later)."""
    found = operation(request)
    model, name = ((found[0].service_model.service_name, found[0].name) if found is not None
                   else (request.service, request.action))
    return {
        "model": model, "operation": name, "method": request.method, "path": request.path,
        "query": request.query,
        "headers": {k: v for k, v in request.headers.items() if k in KEPT_HEADERS},
        "body": base64.b64encode(request.body[:MAX_EXCHANGE_BODY]).decode(),
    }


def _kept_body(answered: Iterable[bytes], entry: Entry) -> Iterable[bytes]:
    """Pass the answer on, keeping (the start of) its body in the entry's exchange."""
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in answered:
            if size < MAX_EXCHANGE_BODY:
                chunks.append(chunk)
                size += len(chunk)
            yield chunk
    finally:
        close = getattr(answered, "close", None)
        if close is not None:
            close()
        if entry.exchange is not None:
            entry.exchange["answer"] = base64.b64encode(b"".join(chunks)).decode()


# --- the client half -------------------------------------------------------------------------


def read_journal(
    endpoint: str, since: float | None = None, timeout: float = 30.0, exchanges: bool = False
) -> list[Entry]:
    """Entries the server at `endpoint` (AWS_ENDPOINT_URL) recorded since `since`.

    With `exchanges`, each entry's whole request and answer (when the server keeps them).
    """
    query = {**({"since": repr(since)} if since is not None else {}),
             **({"exchanges": "1"} if exchanges else {})}
    url = endpoint.rstrip("/") + JOURNAL_PATH
    if query:
        url += "?" + urllib.parse.urlencode(query)
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
