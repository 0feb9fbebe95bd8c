"""Throttling and server errors in the platform's AWS, answered the way AWS answers them.

Real AWS throttles and fails now and then; moto never does. This layer (in motoserver.py,
inside the journal, so the journal records the injected status) answers some AWS calls
itself, before the fidelity layer and moto see them, in the wire format of the service's
protocol, so botocore parses them into the ClientError AWS would cause:

- **Random faults.** ``WPENV_AWS_FAULT_RATE`` (a fraction, default 0) of the calls is
  answered with one of ``WPENV_AWS_FAULT_CODES`` (default
  ``ThrottlingException,InternalFailure,ServiceUnavailable``), picked at random (seeded by
  ``WPENV_AWS_FAULT_SEED`` when set). A throttling name stands for the service's own
  throttling error (EC2 ``RequestLimitExceeded`` with 503, IAM/STS ``Throttling``, Cognito
  ``TooManyRequestsException``, ...: THROTTLES); ``InternalFailure`` is a 500 and
  ``ServiceUnavailable`` a 503 (AWS "Common Errors"); ``Code:status`` names any other.
- **Rate limits.** Token buckets with the rates AWS publishes (ECS, EC2, ELBv2, Cognito,
  Secrets Manager: DEFAULT_LIMITS); a call over its bucket gets the service's throttling
  error. On by default; ``WPENV_AWS_RATE_LIMITS`` is ``on``, ``off``, and/or overrides
  ``service:name=capacity/refill`` (a limit's name, or an action name for a bucket of that
  action alone), comma-separated, e.g. ``off,ecs:DescribeServices=2/0``.

Not touched: the platform's own endpoints (``/wpenv/``, ``/moto-api``) and S3 (streamed
multipart uploads would need the body drained mid-stream, and S3 publishes no per-API rate
that a test could reach). The injected answer is given *instead of* moto's, so a retried
write is never applied twice (AWS may apply a write and still answer 500; this does not).

- **Slow answers.** ``WPENV_AWS_SLOW_RATE`` (a fraction, default 0) of the calls to
  ``WPENV_AWS_SLOW_ACTIONS`` (comma-separated action names; empty: every action) is
  processed by moto as usual, but its answer is held ``WPENV_AWS_SLOW_SECONDS`` (default 5)
  before it is sent: a client whose read timeout is shorter gives up and retries a call
  that AWS already carried out, as happens when an answer is lost on the way.
  ``WPENV_AWS_SLOW_FIRST`` (default 0) holds the first N calls of each of those actions
  (counted from the last change), whatever the rate: a deterministic lost answer.

``GET``/``POST``/``DELETE /wpenv/faults/aws`` (through faults.py) reads, changes (JSON with
any of ``rate``, ``codes``, ``seed``, ``rate_limits``, ``slow_rate``, ``slow_seconds``,
``slow_actions``, ``slow_first``) and resets to the start-up settings;
``DELETE /wpenv/faults`` resets it too. Tests call :func:`set_aws_faults`,
:func:`reset_aws_faults` and :func:`aws_fault_state`.
"""

from __future__ import annotations

import io
import json
import logging
import os
import random
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from tests.platform.fidelity import Refusal, answer
from tests.platform.journal import IGNORED_PREFIXES, REFUSED_BY
from tests.platform.requests import AwsRequest, describe, operation, read
from wpenv import ratelimits
from wpenv.ratelimits import DEFAULT_LIMITS, Limit, Limiter

log = logging.getLogger("wpenv.chaos")

RATE_ENV = "WPENV_AWS_FAULT_RATE"
CODES_ENV = "WPENV_AWS_FAULT_CODES"
SEED_ENV = "WPENV_AWS_FAULT_SEED"
LIMITS_ENV = "WPENV_AWS_RATE_LIMITS"
SLOW_RATE_ENV = "WPENV_AWS_SLOW_RATE"
SLOW_SECONDS_ENV = "WPENV_AWS_SLOW_SECONDS"
SLOW_ACTIONS_ENV = "WPENV_AWS_SLOW_ACTIONS"
SLOW_FIRST_ENV = "WPENV_AWS_SLOW_FIRST"
DEFAULT_SLOW_SECONDS = 5.0
DEFAULT_CODES = ("ThrottlingException", "InternalFailure", "ServiceUnavailable")
CONTROL_PATH = "/wpenv/faults/aws"
MAX_BODY = 1 << 20
UNTOUCHED_SERVICES = frozenset({"s3"})


# --- the errors ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Throttle:
    """A service's throttling error: code, HTTP status, message."""

    code: str
    status: int = 400
    message: str = "Rate exceeded"


# Keyed by SigV4 signing name. Where a service names its own throttling error, that one.
THROTTLES: dict[str, Throttle] = {
    # "Request throttling for the Amazon EC2 API": RequestLimitExceeded; "Error codes for
    # the Amazon EC2 API" lists it among the server errors (500-series).
    "ec2": Throttle("RequestLimitExceeded", 503, "Request limit exceeded."),
    # "Request throttling for the Elastic Load Balancing API": ThrottlingException, "Rate
    # exceeded".
    "elasticloadbalancing": Throttle("ThrottlingException"),
    # Knowledge Center "How do I resolve API throttling or 'Rate exceeded' errors for IAM
    # and AWS STS?": "Throttling: Rate exceeded, status code: 400".
    "iam": Throttle("Throttling"),
    "sts": Throttle("Throttling"),
    # Amazon Cognito user pools API reference, every operation: TooManyRequestsException.
    "cognito-idp": Throttle("TooManyRequestsException", 400, "Too many requests"),
    # Amazon EFS API reference (CreateAccessPoint): ThrottlingException, HTTP 429.
    "elasticfilesystem": Throttle("ThrottlingException", 429),
    # Resource Groups Tagging API reference: ThrottledException.
    "tagging": Throttle("ThrottledException"),
}
# "Common Errors" of every JSON and query API (ECS, Secrets Manager, CloudWatch Logs,
# Application Auto Scaling, ...): ThrottlingException, 400.
DEFAULT_THROTTLE = Throttle("ThrottlingException")
THROTTLING_NAMES = frozenset(
    {"ThrottlingException", "Throttling", "RequestLimitExceeded", "TooManyRequestsException",
     "ThrottledException"}
)
# "Common Errors": InternalFailure 500, ServiceUnavailable 503 (EC2 lists both too).
SERVER_ERRORS: dict[str, tuple[int, str]] = {
    "InternalFailure": (500, "The request processing has failed because of an unknown "
                             "error, exception or failure."),
    "ServiceUnavailable": (503, "The request has failed due to a temporary failure of the "
                                "server."),
}


def throttle_for(service: str) -> Throttle:
    """The throttling error `service` (a signing name) answers with."""
    return THROTTLES.get(service, DEFAULT_THROTTLE)


def fault_for(code: str, service: str) -> Throttle:
    """The error one fault code means for `service`: throttling names map to the service's."""
    if code in THROTTLING_NAMES:
        return throttle_for(service)
    name, _, status = code.partition(":")
    if not name:
        raise ValueError(f"empty fault code in {code!r}")
    if status:
        if not status.isdigit() or not 400 <= int(status) <= 599:
            raise ValueError(f"fault code {code!r}: the status must be 400-599")
        return Throttle(name, int(status), SERVER_ERRORS.get(name, (0, name))[1])
    if name not in SERVER_ERRORS:
        raise ValueError(f"fault code {name!r}: give its HTTP status as {name}:<status>")
    known_status, message = SERVER_ERRORS[name]
    return Throttle(name, known_status, message)


# --- what a call is --------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """What chaos sees of one AWS request."""

    service: str  # the SigV4 signing name
    action: str
    protocol: str  # json | query | ec2 | rest-json | rpc-v2-cbor; "" when left alone
    params: Mapping[str, str] = field(default_factory=dict)  # query params / JSON scalars


def call_of(request: AwsRequest) -> Call:
    """What chaos sees of a described request; S3 and other REST-XML calls are left alone."""
    protocol = request.protocol
    if request.service in UNTOUCHED_SERVICES or protocol == "rest-xml":
        protocol = ""
    return Call(request.service, request.action, protocol, request.params)


def operation_name(request: AwsRequest) -> str:
    """The operation a request is (botocore's name: CreateAccessPoint), else its action."""
    found = operation(request)
    return str(found[0].name) if found is not None else request.action


def describe_call(environ: WSGIEnvironment, body: bytes) -> Call:
    """Service, operation and protocol of a request (its body already read into `body`)."""
    return call_of(describe(environ, body))


# --- the published rates: one table with the operator's own (wpenv/ratelimits.py) -----------


def parse_limits(spec: str, defaults: Iterable[Limit] = DEFAULT_LIMITS) -> tuple[Limit, ...]:
    """The limits `spec` (WPENV_AWS_RATE_LIMITS) asks for; ValueError when it is malformed."""
    return ratelimits.parse_limits(spec, defaults, source=LIMITS_ENV)


# --- settings --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Slowness:
    """Which answers are held, and for how long (validated on construction)."""

    rate: float = 0.0
    seconds: float = DEFAULT_SLOW_SECONDS
    actions: tuple[str, ...] = ()  # empty: every action
    first: int = 0  # the first N calls of each action are held, whatever the rate

    def __post_init__(self) -> None:
        """Refuse what would fail later, inside a request."""
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"{SLOW_RATE_ENV}: {self.rate} is not a fraction between 0 and 1")
        if not 0.0 <= self.seconds <= 600.0:
            raise ValueError(f"{SLOW_SECONDS_ENV}: {self.seconds} is not 0-600 seconds")
        if self.first < 0:
            raise ValueError(f"{SLOW_FIRST_ENV}: {self.first} is negative")

    @property
    def on(self) -> bool:
        """Whether any answer may be held."""
        return self.seconds > 0 and (self.rate > 0 or self.first > 0)

    def covers(self, action: str) -> bool:
        """Whether calls of `action` may be held."""
        return not self.actions or action in self.actions


SLOW_KEYS = {"slow_rate": "rate", "slow_seconds": "seconds", "slow_actions": "actions",
             "slow_first": "first"}


@dataclass(frozen=True)
class ChaosSettings:
    """Fault rate, codes, seed, rate-limit spec and slow answers (validated on construction)."""

    rate: float = 0.0
    codes: tuple[str, ...] = DEFAULT_CODES
    seed: int | None = None
    rate_limits: str = "on"
    slow: Slowness = field(default_factory=Slowness)

    def __post_init__(self) -> None:
        """Refuse what would fail later, inside a request."""
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"{RATE_ENV}: {self.rate} is not a fraction between 0 and 1")
        if not self.codes:
            raise ValueError(f"{CODES_ENV}: no fault codes")
        for code in self.codes:
            fault_for(code, "")
        parse_limits(self.rate_limits)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ChaosSettings:
        """Read WPENV_AWS_FAULT_*, WPENV_AWS_RATE_LIMITS and WPENV_AWS_SLOW_*."""
        try:
            rate = float(env.get(RATE_ENV) or 0)
            seed = int(env[SEED_ENV]) if env.get(SEED_ENV) else None
            slow = Slowness(
                rate=float(env.get(SLOW_RATE_ENV) or 0),
                seconds=float(env.get(SLOW_SECONDS_ENV) or DEFAULT_SLOW_SECONDS),
                actions=_codes(env.get(SLOW_ACTIONS_ENV) or ""),
                first=int(env.get(SLOW_FIRST_ENV) or 0),
            )
        except ValueError as exc:
            raise ValueError(f"WPENV_AWS_FAULT_* or WPENV_AWS_SLOW_*: {exc}") from None
        codes = _codes(env.get(CODES_ENV) or ",".join(DEFAULT_CODES))
        return cls(rate, codes, seed, env.get(LIMITS_ENV) or "on", slow)

    def changed(self, doc: Mapping[str, Any]) -> ChaosSettings:
        """These settings with the keys of a POST document replaced."""
        unknown = set(doc) - {"rate", "codes", "seed", "rate_limits", *SLOW_KEYS}
        if unknown:
            raise ValueError(f"unknown keys: {', '.join(sorted(unknown))}")
        codes = doc.get("codes", self.codes)
        seed = doc.get("seed", self.seed)
        return ChaosSettings(
            rate=float(doc.get("rate", self.rate)),
            codes=_codes(codes) if isinstance(codes, str) else tuple(str(c) for c in codes),
            seed=None if seed is None else int(seed),
            rate_limits=str(doc.get("rate_limits", self.rate_limits)),
            slow=self._slow_changed(doc),
        )

    def _slow_changed(self, doc: Mapping[str, Any]) -> Slowness:
        actions = doc.get("slow_actions", self.slow.actions)
        return Slowness(
            rate=float(doc.get("slow_rate", self.slow.rate)),
            seconds=float(doc.get("slow_seconds", self.slow.seconds)),
            actions=_codes(actions) if isinstance(actions, str)
            else tuple(str(a) for a in actions),
            first=int(doc.get("slow_first", self.slow.first)),
        )


def _codes(raw: str) -> tuple[str, ...]:
    return tuple(code.strip() for code in raw.split(",") if code.strip())


# --- the layer -------------------------------------------------------------------------------


class Chaos:
    """The faults and buckets in force, the WSGI layer applying them, and their endpoint."""

    name = "aws"  # its key in GET /wpenv/faults
    path = CONTROL_PATH

    def __init__(
        self, settings: ChaosSettings | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """Start with `settings` (default: from the environment); they are also the reset."""
        self.startup = settings if settings is not None else ChaosSettings.from_env(os.environ)
        self.clock = clock
        self.lock = threading.Lock()
        self.injected: Counter[str] = Counter()
        self.slowed: Counter[str] = Counter()  # held answers per action, for `first`
        self._apply(self.startup)

    def _apply(self, settings: ChaosSettings) -> None:
        limiter = Limiter(parse_limits(settings.rate_limits), self.clock)
        with self.lock:
            self.settings = settings
            self.rng = random.Random(settings.seed)
            self.limiter = limiter
            self.injected.clear()
            self.slowed.clear()

    def decide(self, call: Call) -> Refusal | None:
        """The error to answer `call` with, or None to let it through."""
        judged = self.judge(call)
        return judged[1] if judged else None

    def judge(self, call: Call) -> tuple[str, Refusal] | None:
        """`decide`, and whether it is a "throttle" or an injected "fault"."""
        if not call.protocol:
            return None
        limit = self.limiter.admit(call)
        if limit is not None:
            error = throttle_for(call.service)
            self._count(f"throttled {call.service}:{limit.name}")
            return "throttle", Refusal(error.status, error.code, error.message,
                                       protocol=call.protocol)
        with self.lock:
            settings = self.settings
            if settings.rate <= 0.0 or self.rng.random() >= settings.rate:
                return None
            code = self.rng.choice(settings.codes)
        error = fault_for(code, call.service)
        self._count(f"fault {error.code}")
        return "fault", Refusal(error.status, error.code, error.message, protocol=call.protocol)

    def hold(self, call: Call, name: Callable[[], str] | None = None) -> float:
        """Seconds to hold the answer to `call` (already let through), 0 for none.

        `name` gives the operation's name where the action is not one (REST: EFS).
        """
        slow = self.settings.slow
        if not (call.protocol and slow.on):
            return 0.0
        action = name() if name is not None and call.protocol == "rest-json" else call.action
        with self.lock:
            if not slow.covers(action):
                return 0.0
            if self.slowed[action] >= slow.first and (
                slow.rate <= 0.0 or self.rng.random() >= slow.rate
            ):
                return 0.0
            self.slowed[action] += 1
            self.injected[f"slow {action}"] += 1
            return slow.seconds

    def _count(self, what: str) -> None:
        with self.lock:
            self.injected[what] += 1

    def state(self) -> dict[str, Any]:
        """What is in force, and how many calls were refused since the last change."""
        with self.lock:
            settings, injected = self.settings, dict(self.injected)
            limits = [limit.describe() for limit in self.limiter.limits]
        slow = settings.slow
        return {"rate": settings.rate, "codes": list(settings.codes), "seed": settings.seed,
                "rate_limits": settings.rate_limits, "limits": limits, "injected": injected,
                "slow_rate": slow.rate, "slow_seconds": slow.seconds,
                "slow_actions": list(slow.actions), "slow_first": slow.first}

    def clear(self) -> None:
        """Back to the start-up settings, with full buckets."""
        self._apply(self.startup)

    def handle(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """The control endpoint: GET state, POST changes, DELETE resets."""
        method = str(environ.get("REQUEST_METHOD") or "GET").upper()
        if method == "POST":
            try:
                length = min(int(environ.get("CONTENT_LENGTH") or 0), MAX_BODY)
                doc = json.loads(environ["wsgi.input"].read(length) or b"{}")
                if not isinstance(doc, dict):
                    raise ValueError("a JSON object")
                self._apply(self.settings.changed(doc))
            except (ValueError, TypeError) as exc:
                return _json(start_response, "400 Bad Request", {"error": str(exc)})
            log.info("AWS faults now %s", doc)
        elif method == "DELETE":
            self.clear()
        elif method != "GET":
            return _json(start_response, "405 Method Not Allowed", {"error": "GET, POST, DELETE"})
        return _json(start_response, "200 OK", self.state())

    def wsgi(self, app: WSGIApplication) -> WSGIApplication:
        """Answer the calls `decide` picks ourselves; hand everything else to `app`."""

        def wsgi(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            if str(environ.get("PATH_INFO") or "").startswith(IGNORED_PREFIXES):
                return app(environ, start_response)
            request = read(environ)
            call = call_of(request)
            judged = self.judge(call)
            if judged is None:
                held = self.hold(call, lambda: operation_name(request))
                if held > 0:
                    return _held(app, environ, start_response, held)
                return app(environ, start_response)
            kind, refusal = judged
            environ[REFUSED_BY] = f"{kind} {refusal.code}"  # the journal counts it
            _drain(environ)
            return answer(start_response, refusal)

        return wsgi


def _held(
    app: WSGIApplication, environ: WSGIEnvironment, start_response: StartResponse,
    seconds: float,
) -> Iterable[bytes]:
    """Let `app` carry the request out, then wait `seconds` before answering."""
    answered: list[tuple[str, list[tuple[str, str]]]] = []

    def keep(status: str, headers: list[tuple[str, str]], *_exc: Any) -> Callable[[bytes], Any]:
        answered.append((status, headers))
        return lambda _data: None

    result = app(environ, keep)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    time.sleep(seconds)  # the client's read timeout runs out meanwhile
    status, headers = answered[-1]
    start_response(status, headers)
    return [body]


def _drain(environ: WSGIEnvironment) -> None:
    """Read what is left of a body we answer without, so the connection stays usable."""
    stream = environ.get("wsgi.input")
    if stream is not None and not isinstance(stream, io.BytesIO):
        try:
            remaining = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return
        while remaining > 0:
            chunk = stream.read(min(remaining, 1 << 16))
            if not chunk:
                break
            remaining -= len(chunk)


def _json(start_response: StartResponse, status: str, doc: object) -> list[bytes]:
    body = json.dumps(doc).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]


# --- the client side, for tests --------------------------------------------------------------


def _call(endpoint: str, method: str, doc: Mapping[str, Any] | None = None) -> dict[str, Any]:
    request = urllib.request.Request(
        endpoint.rstrip("/") + CONTROL_PATH,
        data=None if doc is None else json.dumps(doc).encode(),
        method=method,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        state: dict[str, Any] = json.loads(reply.read())
    return state


def set_aws_faults(
    endpoint: str,
    *,
    rate: float | None = None,
    codes: Iterable[str] | None = None,
    seed: int | None = None,
    rate_limits: str | None = None,
    **slow: Any,
) -> dict[str, Any]:
    """Change the server's faults at `endpoint` (AWS_ENDPOINT_URL); unnamed ones stay.

    `slow` takes the slow-answer keys: slow_rate, slow_seconds, slow_actions, slow_first.
    """
    unknown = set(slow) - set(SLOW_KEYS)
    if unknown:
        raise TypeError(f"unknown slow-answer keys: {sorted(unknown)}")
    doc: dict[str, Any] = {key: list(v) if key == "slow_actions" else v
                           for key, v in slow.items() if v is not None}
    if rate is not None:
        doc["rate"] = rate
    if codes is not None:
        doc["codes"] = list(codes)
    if seed is not None:
        doc["seed"] = seed
    if rate_limits is not None:
        doc["rate_limits"] = rate_limits
    return _call(endpoint, "POST", doc)


def reset_aws_faults(endpoint: str) -> dict[str, Any]:
    """Back to the server's start-up settings (its environment), with full buckets."""
    return _call(endpoint, "DELETE")


def aws_fault_state(endpoint: str) -> dict[str, Any]:
    """The server's fault settings, limits and counts of refused calls."""
    return _call(endpoint, "GET")
