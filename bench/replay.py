"""The operator's AWS and SQL calls, replayed by a straight-line script: the baseline.

From the platform's request journal (its exchanges: every request and answer whole) and
MariaDB's general log of an operator run, `plan` makes one lane per environment: its AWS
requests and SQL statements in the order they arrived. `Replayer.run` then sends each lane's
calls one after the other, as fast as the answers come, lanes side by side with the
operator's concurrency, under other tenant ids. Requests are signed and sent with
botocore's own signer and HTTP session and every answer parsed by botocore's parser (what
a boto3 call costs, minus building the request from keyword arguments); SQL goes through
pymysql on a TLS connection, as the operator's does.

What differs between the two runs is carried over: the tenant id (replaced, same length)
and the identifiers AWS made up (an ARN's suffix, a pool id): a create's answer in the
replay is laid beside the recorded one, and each identifier that differs is replaced in
the lane's later requests. A call AWS throttles in the replay but not in the recording is
tried again after botocore's standard-mode backoff, as a boto3 script's would be.
"""

from __future__ import annotations

import base64
import random
import re
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import botocore.session
import pymysql
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HeadersDict
from botocore.httpsession import URLLib3Session
from botocore.parsers import create_parser

from tests.platform.journal import Entry
from wpenv.mysql import DatabaseServer

THROTTLED = frozenset({"Throttling", "ThrottlingException", "ThrottledException",
                       "RequestLimitExceeded", "TooManyRequestsException"})
RETRIES = 6
MAX_BACKOFF = 20.0


def backoff(attempt: int) -> float:
    """botocore's standard-mode delay before retry `attempt` + 1: full jitter on 2^attempt s.

    The operator's clients back off this way, so the straight line does too.
    """
    return random.random() * min(MAX_BACKOFF, 2.0 ** attempt)  # noqa: S311 - jitter
# Answer fields never worth carrying over (the request ids, the wire metadata).
SKIPPED_KEYS = frozenset({"ResponseMetadata", "RequestId", "requestId"})
ID_LIKE = re.compile(r"[^\s]{6,2048}")
# Client tokens the operator (or botocore) drew at random: the replay draws its own, or AWS
# would take its requests for repeats of the operator's.
TOKEN = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True)
class SqlCall:
    """One row of the general log: a connection's Connect, Query, Init DB or Quit."""

    time: float
    thread: int
    command: str
    argument: str


@dataclass
class Call:
    """One call of a lane: an AWS request (`entry`) or a SQL command (`sql`)."""

    time: float
    entry: Entry | None = None
    sql: SqlCall | None = None

    def text(self) -> str:
        """What the call says, to tell whose it is."""
        if self.sql is not None:
            return self.sql.argument
        exchange = (self.entry.exchange if self.entry is not None else None) or {}
        body = base64.b64decode(exchange.get("body") or "").decode("utf-8", "replace")
        return f"{exchange.get('path', '')}?{exchange.get('query', '')} {body}"


@dataclass
class Plan:
    """The lanes (environment -> its calls in order) and what could not be placed."""

    lanes: dict[str, list[Call]]
    unplaced: int = 0

    @property
    def calls(self) -> int:
        """How many calls the lanes hold."""
        return sum(len(calls) for calls in self.lanes.values())


def _owner(text: str, tenants: Sequence[str]) -> str | None:
    found = [tenant for tenant in tenants if tenant in text]
    return found[0] if len(found) == 1 else None


def _answer_ids(entry: Entry, parser: AnswerParser) -> Iterator[str]:
    """Identifier-looking strings in a recorded answer (to place the calls that use them)."""
    parsed = parser.recorded(entry)
    if parsed is not None:
        yield from (value for value in _strings(parsed) if ID_LIKE.fullmatch(value))


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if key not in SKIPPED_KEYS:
                yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def plan(entries: Iterable[Entry], sql: Iterable[SqlCall], tenants: Sequence[str]) -> Plan:
    """One lane per tenant, from an operator run's journal entries and general log.

    A call whose request names a tenant, or an identifier that tenant's earlier answers
    carried, is that tenant's; a SQL connection is the tenant's whose names its statements
    use. A call that names none (a shared listener's rules, the pool count) goes to the
    tenant that was between calls then and whose next call came soonest: the operator
    works on one environment per thread, a call after another.
    """
    parser = AnswerParser()
    calls = [Call(e.time, entry=e) for e in entries if e.exchange is not None]
    by_thread: dict[int, list[SqlCall]] = {}
    for row in sql:
        by_thread.setdefault(row.thread, []).append(row)
    owners: dict[int, str | None] = {
        thread: _owner(" ".join(r.argument for r in rows), tenants)
        for thread, rows in by_thread.items()
    }
    calls += [Call(r.time, sql=r) for rows in by_thread.values() for r in rows]
    calls.sort(key=lambda c: c.time)
    known: dict[str, str] = {}  # identifier -> tenant
    owner_of: list[str | None] = []
    for call in calls:
        owner = (owners[call.sql.thread] if call.sql is not None
                 else _owner(call.text(), tenants))
        if owner is None and call.entry is not None:
            text = call.text()
            owner = next((t for ident, t in known.items() if ident in text), None)
        if owner is not None and call.entry is not None and call.entry.write:
            known.update(dict.fromkeys(_answer_ids(call.entry, parser), owner))
        owner_of.append(owner)
    lanes: dict[str, list[Call]] = {tenant: [] for tenant in tenants}
    unplaced = 0
    for index, (call, owner) in enumerate(zip(calls, owner_of, strict=True)):
        chosen = owner or _nearest(calls, owner_of, index)
        if chosen is None:
            unplaced += 1
            continue
        lanes[chosen].append(call)
    return Plan({t: c for t, c in lanes.items() if c}, unplaced)


def _nearest(calls: Sequence[Call], owners: Sequence[str | None], index: int) -> str | None:
    """The tenant with no call in flight at calls[index] whose next call is soonest."""
    at = calls[index].time
    start = max(0, index - 400)  # in flight now: among the calls just before
    busy = {owner for call, owner in zip(calls[start:index], owners[start:index], strict=True)
            if owner and call.entry is not None and (call.entry.done or at) > at}
    for owner in owners[index + 1:]:
        if owner and owner not in busy:
            return owner
    return None


def idle_gaps(calls: Sequence[Call], top: int = 8) -> list[tuple[float, str]]:
    """Where a lane waited with no call in flight: seconds per (call before -> call after).

    In the operator's run that is the operator's own time (its passes, requeues, status
    writes); the straight line has none of it.
    """
    gaps: dict[str, float] = {}
    busy_until, before = None, "start"
    for call in calls:
        name = call.entry.action if call.entry is not None else (
            f"SQL {call.sql.command}" if call.sql is not None else "?")
        if busy_until is not None and call.time > busy_until:
            label = f"{before} -> {name}"
            gaps[label] = gaps.get(label, 0.0) + call.time - busy_until
        done = call.entry.done if call.entry is not None and call.entry.done else call.time
        busy_until = max(busy_until or done, done)
        before = name
    return sorted(((seconds, label) for label, seconds in gaps.items()), reverse=True)[:top]


class AnswerParser:
    """botocore's parser of each operation's answers (what a boto3 call parses with)."""

    def __init__(self) -> None:
        self.session = botocore.session.get_session()
        self.models: dict[str, Any] = {}
        self.lock = threading.Lock()

    def operation(self, exchange: Mapping[str, Any]) -> Any | None:
        """botocore's OperationModel of an exchange, None when botocore has none."""
        model = str(exchange.get("model") or "")
        with self.lock:
            if model not in self.models:
                try:
                    self.models[model] = self.session.get_service_model(model)
                except Exception:  # not a botocore service name
                    self.models[model] = None
        service = self.models[model]
        name = str(exchange.get("operation") or "")
        if service is None or name not in service.operation_names:
            return None
        return service.operation_model(name)

    def parse(self, exchange: Mapping[str, Any], status: int, headers: Mapping[str, str],
              body: bytes) -> dict[str, Any] | None:
        """The answer as boto3 would return it (or its error), None when it cannot tell."""
        operation = self.operation(exchange)
        if operation is None:
            return None
        parser = create_parser(operation.service_model.protocol)
        try:
            parsed: dict[str, Any] = parser.parse(
                {"status_code": status, "headers": HeadersDict(headers), "body": body},
                operation.output_shape,
            )
        except Exception:  # an answer botocore cannot read: nothing to carry over
            return None
        return parsed

    def recorded(self, entry: Entry) -> dict[str, Any] | None:
        """The parsed answer of a recorded exchange."""
        exchange = entry.exchange or {}
        return self.parse(exchange, entry.status or 0, exchange.get("answer_headers") or {},
                          base64.b64decode(exchange.get("answer") or ""))


def carried_over(recorded: Any, replayed: Any, into: dict[str, str]) -> None:
    """Add each identifier that differs between two parsed answers (same shape) to `into`."""
    if isinstance(recorded, Mapping) and isinstance(replayed, Mapping):
        for key, value in recorded.items():
            if key not in SKIPPED_KEYS and key in replayed:
                carried_over(value, replayed[key], into)
    elif isinstance(recorded, list) and isinstance(replayed, list):
        for old, new in zip(recorded, replayed, strict=False):
            carried_over(old, new, into)
    elif (isinstance(recorded, str) and isinstance(replayed, str) and recorded != replayed
          and ID_LIKE.fullmatch(recorded)):
        into[recorded] = replayed


@dataclass
class Tally:
    """What a replay did: calls sent, retried after throttling, answered otherwise."""

    aws: int = 0
    sql: int = 0
    retried: int = 0
    diverged: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, **counts: int) -> None:
        """Count under the lock (lanes run in threads)."""
        with self.lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)


class Replayer:
    """Sends a plan's lanes against the platform under new tenant ids."""

    def __init__(self, endpoint: str, region: str, server: DatabaseServer,
                 renamed: Mapping[str, str]) -> None:
        """`renamed`: recorded tenant id -> the replay's (the same length)."""
        self.endpoint = endpoint.rstrip("/")
        self.region = region
        self.server = server
        self.renamed = dict(renamed)
        self.credentials = botocore.session.get_session().get_credentials()
        self.http = URLLib3Session(max_pool_connections=64)
        self.parser = AnswerParser()
        self.tally = Tally()

    def run(self, lanes: Mapping[str, Sequence[Call]], concurrency: int) -> float:
        """Every lane, `concurrency` at a time in the order they started; seconds taken."""
        ordered = sorted(lanes.values(), key=lambda calls: calls[0].time)
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            for done in pool.map(self.lane, ordered):
                del done
        return time.monotonic() - started

    def lane(self, calls: Sequence[Call]) -> None:
        """One environment's calls, one after the other."""
        ids: dict[str, str] = {}
        connections: dict[int, Any] = {}
        try:
            for call in calls:
                if call.entry is not None:
                    self.aws(call.entry, ids)
                elif call.sql is not None:
                    self.mysql(call.sql, connections)
        finally:
            for connection in connections.values():
                connection.close()

    def rewrite(self, data: bytes, ids: Mapping[str, str]) -> bytes:
        """Recorded identifiers, then tenant ids, replaced by the replay's."""
        for old, new in ids.items():
            if old.encode() in data:
                data = data.replace(old.encode(), new.encode())
            quoted = urllib.parse.quote(old, safe="-_.~").encode()
            if quoted != old.encode() and quoted in data:
                data = data.replace(quoted, urllib.parse.quote(new, safe="-_.~").encode())
        for old, new in self.renamed.items():
            data = data.replace(old.encode(), new.encode())
        return data

    @staticmethod
    def fresh_tokens(data: bytes, ids: dict[str, str]) -> bytes:
        """Each random token replaced by one of the replay's (the same one each time; a
        token an answer made up, by the one the replay's answer made)."""
        return TOKEN.sub(
            lambda m: ids.setdefault(m.group(0).decode(), str(uuid.uuid4())).encode(), data)

    def aws(self, entry: Entry, ids: dict[str, str]) -> None:
        """Send one recorded request; learn the identifiers a write's answer made up."""
        exchange = entry.exchange or {}
        body = self.rewrite(
            self.fresh_tokens(base64.b64decode(exchange.get("body") or ""), ids), ids)
        path = self.rewrite(str(exchange.get("path") or "/").encode(), ids).decode()
        query = self.rewrite(str(exchange.get("query") or "").encode(), ids).decode()
        url = self.endpoint + path + (f"?{query}" if query else "")
        for attempt in range(RETRIES):
            request = AWSRequest(method=exchange.get("method") or "POST", url=url, data=body,
                                 headers=dict(exchange.get("headers") or {}))
            SigV4Auth(self.credentials, entry.service, self.region).add_auth(request)
            answer = self.http.send(request.prepare())
            parsed = self.parser.parse(exchange, answer.status_code, dict(answer.headers),
                                       answer.content)
            code = str(((parsed or {}).get("Error") or {}).get("Code") or "")
            if code in THROTTLED and (entry.status or 0) < 400 and attempt + 1 < RETRIES:
                self.tally.add(retried=1)
                time.sleep(backoff(attempt))
                continue
            break
        self.tally.add(aws=1, diverged=int((answer.status_code >= 400) != (
            (entry.status or 0) >= 400)))
        if entry.write and parsed is not None and answer.status_code < 400:
            recorded = self.parser.recorded(entry)
            if recorded is not None:
                carried_over(recorded, parsed, ids)

    def mysql(self, call: SqlCall, connections: dict[int, Any]) -> None:
        """One command of a recorded connection, on the replay's connection for it."""
        text = self.rewrite(call.argument.encode(), {}).decode()
        if call.command == "Connect":
            connections[call.thread] = self.server.connect()
        elif call.command == "Quit":
            connection = connections.pop(call.thread, None)
            if connection is not None:
                connection.close()
        elif call.command in ("Query", "Init DB"):
            if call.thread not in connections:
                connections[call.thread] = self.server.connect()
            connection = connections[call.thread]
            try:
                if call.command == "Init DB":
                    connection.select_db(text)
                else:
                    with connection.cursor() as cursor:
                        cursor.execute(text)
                        cursor.fetchall()
            except pymysql.MySQLError:
                self.tally.add(diverged=1)
        else:
            return
        self.tally.add(sql=1)
