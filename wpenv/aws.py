"""AWS clients and error classification, shared by every reconciler.

Retries of throttling and 5xx answers are botocore's own (standard mode, more attempts
than the default); the engine adds backoff between passes for what still fails. The
endpoint comes from AWS_ENDPOINT_URL when set, which is how the local platform points
boto3 at its emulator: the operator has no emulator-specific code.

Every client reports its calls to the metrics through botocore's own event hooks
(`instrument`): one count and one latency per API call, retries included, and one count
per attempt that botocore's standard retry mode classifies as throttled.

Every client of a process also shares one `ratelimits.Limiter` (`rate_limited`): before
each attempt is sent, it waits for a token of each API family the call belongs to (AWS's
published rates unless `aws_rate_limits` says otherwise), so a burst of passes (a restart,
a thousand drift checks) is spread out by the operator rather than throttled by AWS. The
time spent waiting is a histogram (`wpenv_aws_rate_limit_wait_seconds`).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)
from botocore.parsers import ResponseParserError
from botocore.retries.standard import RetryEventAdapter, ThrottlingErrorDetector

from wpenv import metrics, ratelimits
from wpenv.settings import Settings

SERVICES = (
    "ec2",
    "ecs",
    "efs",
    "elbv2",
    "iam",
    "secretsmanager",
    "s3",
    "cognito-idp",
    "application-autoscaling",
    "resourcegroupstaggingapi",
    "logs",
    "sts",
)

# Error codes that are worth another pass: throttling, eventual consistency, conflicts.
# Not here: codes that are transient for one call only (EC2's DependencyViolation while a
# security group's interfaces go away), which that call's kind matches itself.
TRANSIENT_CODES = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestThrottled",
    "SlowDown",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "InternalErrorException",
    "ServerException",
    "ConcurrentModificationException",
    "ResourceInUse",
    "ResourceInUseException",
    "PriorityInUse",
    "IncorrectFileSystemLifeCycleState",
    "InvalidParameterException.Throttled",
}


# Errors worth another pass that only their code *and* message tell apart from permanent
# ones with the same code: (code, the whole message, with a slot for what varies).
TRANSIENT_MESSAGES = (
    # IAM is eventually consistent: a role created a moment ago cannot be assumed by ECS
    # yet (RegisterTaskDefinition, RunTask). The role is the operator's own, made by the
    # step before, so waiting is the cure; a role that never works keeps the condition.
    (
        "ClientException",
        re.compile(
            r"ECS was unable to assume the role '[^']+' that was provided for this task\. "
            r"Please verify that the role being passed has the proper trust relationship "
            r"and permissions and that your IAM user has permissions to pass this role\."
        ),
    ),
)

S3_READ_TIMEOUT = 600
# Keys of botocore's data files that carry documentation (help(), docstrings). Their
# values are emptied, not their keys removed: some of botocore's model classes read the key
# (e.g. an S3 client's context parameters), and an empty string costs nothing.
DOCUMENTATION = frozenset({"documentation", "documentationUrl"})
# Tokens our buckets keep below AWS's. Calls reach AWS later than they leave, and not
# evenly: two sent a refill interval apart can arrive closer. With 100 applied at once and
# buckets the size of AWS's, AWS throttled 3 of some 9,000 calls; this way its bucket still
# holds a couple of tokens when ours is empty.
RATE_HEADROOM = 2.0


def _without_documentation(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """One JSON object of a data file, as a plain dict with its documentation emptied."""
    return {key: "" if key in DOCUMENTATION and isinstance(value, str) else value
            for key, value in pairs}


class CompactModels(botocore.loaders.JSONFileLoader):  # type: ignore[misc]
    """botocore's data files (service models, endpoints) in about 20 MB less memory.

    botocore keeps every model it loaded for the life of the process: a dozen services,
    EC2's alone tens of thousands of objects, each an OrderedDict (twice a dict's size) and
    most with a documentation string no client call reads (emptied here). Plain dicts
    keep the order.
    """

    def _load_file(self, full_path: str, open_method: Callable[..., IO[bytes]]) -> Any:
        if not os.path.isfile(full_path):
            return None
        with open_method(full_path, "rb") as fp:
            payload = fp.read().decode("utf-8")
        return json.loads(payload, object_pairs_hook=_without_documentation)


def compact_session(region: str) -> boto3.session.Session:
    """A boto3 session whose clients load their models through `CompactModels`."""
    core = botocore.session.get_session()
    loader = botocore.loaders.create_loader(core.get_config_variable("data_path"))
    loader.file_loader = CompactModels()
    core.register_component("data_loader", loader)
    return boto3.session.Session(botocore_session=core, region_name=region)


@dataclass
class Clients:
    """One boto3 client per service, created lazily and reused (they are thread-safe)."""

    settings: Settings
    session: Any = None
    _made: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # One limiter for every client: AWS counts an account's calls, not a client's.
        self.limiter = ratelimits.Limiter(
            ratelimits.parse_limits(self.settings.aws_rate_limits, source="aws_rate_limits"),
            headroom=RATE_HEADROOM,
        )
        if self.session is None:
            self.session = compact_session(self.settings.region)
        self._config = Config(
            retries={"mode": self.settings.aws_retry_mode, "max_attempts": 6},
            connect_timeout=5,
            read_timeout=self.settings.aws_read_timeout_seconds,
        )
        # CompleteMultipartUpload of a large archive may take minutes before S3 answers
        # (AWS documents it); a 30 s timeout would retry it while the first one still
        # assembles the object.
        self._long = self._config.merge(Config(read_timeout=S3_READ_TIMEOUT))

    def __getattr__(self, service: str) -> Any:
        """`clients.ecs`, `clients.elbv2`, `clients.cognito_idp`, ..."""
        name = service.replace("_", "-")
        if name not in SERVICES:
            raise AttributeError(service)
        if name not in self._made:
            config = self._long if name == "s3" else self._config
            client = self.session.client(name, config=config)
            self._made[name] = rate_limited(instrument(client), self.limiter)
        return self._made[name]

    def once(self, service: str) -> Any:
        """A client of `service` that never repeats a call (botocore's retries off).

        For creates that AWS cannot recognise as repeated (no client token, no unique
        name: CreateUserPool, CreateUserPoolClient): botocore would send one again after
        a lost answer and make a second resource. Instead the call fails as transient and
        the next pass finds what the first one created by name and tag.
        """
        key = f"{service}/once"
        if key not in self._made:
            config = self._config.merge(Config(retries={"total_max_attempts": 1}))
            self._made[key] = instrument(self.session.client(service, config=config))
        return self._made[key]


# Where a call's start time waits, in the per-call context botocore passes to each hook.
_STARTED = "wpenv_started"
_THROTTLING = ThrottlingErrorDetector(RetryEventAdapter())


def instrument(client: Any) -> Any:
    """Count `client`'s calls, their latency and throttled attempts (botocore's hooks).

    before-call and after-call / after-call-error frame one API call, retries included;
    needs-retry fires once per attempt. Unique ids make a second call a no-op.
    """
    events = client.meta.events
    events.register("before-call", _call_started, unique_id="wpenv-metrics-start")
    events.register("after-call", _call_answered, unique_id="wpenv-metrics-answer")
    events.register("after-call-error", _call_failed, unique_id="wpenv-metrics-error")
    events.register("needs-retry", _attempt_done, unique_id="wpenv-metrics-throttle")
    return client


# Where a call's rate-limit identity waits between before-call and each attempt's before-send.
_RATED = "wpenv_rated"


def rate_limited(client: Any, limiter: ratelimits.Limiter) -> Any:
    """Make each attempt of `client`'s calls wait for `limiter`'s tokens before it is sent.

    before-parameter-build names the call as the limits see it (signing name, action,
    top-level parameters: the call's own, not before-call's serialized request, whose
    JSON body hides UserPoolId, which made every pool share one per-pool bucket);
    before-send, once per attempt (retries take tokens too, as they do at AWS), waits.
    Registered first, ahead of any handler that answers in place of AWS.
    """
    events = client.meta.events

    def named(context: dict[str, Any], model: Any, params: dict[str, Any], **_: Any) -> None:
        context[_RATED] = (call_of(model, params), _labels(model))

    def wait(request: Any, **_: Any) -> None:
        rated = (getattr(request, "context", None) or {}).get(_RATED)
        if rated is None:
            return
        call, labels = rated
        waited = limiter.wait(call)
        if waited > 0.0:
            metrics.AWS_RATE_WAIT.labels(*labels).observe(waited)

    events.register("before-parameter-build", named, unique_id="wpenv-rate-name")
    events.register_first("before-send", wait, unique_id="wpenv-rate-wait")
    return client


def call_of(model: Any, params: dict[str, Any]) -> ratelimits.Call:
    """One call as the limits see it: what the request on the wire would carry.

    Scalars keep their value (Cognito's per-pool limits read UserPoolId), lists and maps
    only their name (EC2's unfiltered describes are those without Filters or paging); the
    query protocols' Version is on the wire too (ELBv2's limits apply to its version only).
    """
    service_model = model.service_model
    shown = {key: _shown(value) for key, value in params.items()}
    if service_model.protocol in ("query", "ec2"):
        shown["Version"] = str(service_model.api_version)
    return ratelimits.Call(str(service_model.signing_name), str(model.name), shown)


def _shown(value: Any) -> str:
    """A parameter's value as `call_of` keeps it: strings and numbers as text, anything else
    as '' (collections, and bodies: the text of an 8 MiB UploadPart body would cost four
    times its size on every part)."""
    if isinstance(value, str):
        return value
    return str(value) if isinstance(value, bool | int | float) else ""


def _labels(model: Any) -> tuple[str, str]:
    """(service, operation) of an OperationModel: e.g. ("cognito-idp", "CreateUserPool")."""
    return str(model.service_model.service_name), str(model.name)


def _call_started(context: dict[str, Any], model: Any, **_: Any) -> None:
    context[_STARTED] = (time.monotonic(), *_labels(model))


def _call_ended(context: dict[str, Any], outcome: str) -> None:
    started = context.pop(_STARTED, None)
    if started is None:
        return
    began, service, operation = started
    metrics.AWS_CALLS.labels(service, operation, outcome).inc()
    metrics.AWS_SECONDS.labels(service, operation).observe(time.monotonic() - began)


def _call_answered(
    context: dict[str, Any], http_response: Any, parsed: dict[str, Any], **_: Any
) -> None:
    if int(http_response.status_code) < 300:
        _call_ended(context, "ok")
    else:
        _call_ended(context, str(parsed.get("Error", {}).get("Code") or http_response.status_code))


def _call_failed(context: dict[str, Any], exception: BaseException, **_: Any) -> None:
    _call_ended(context, type(exception).__name__)


def _attempt_done(**kwargs: Any) -> None:
    """Count a throttled attempt; return None so botocore's own retry handler decides."""
    if kwargs.get("response") is None and kwargs.get("caught_exception") is None:
        return
    if _THROTTLING.is_throttling_error(**kwargs):
        metrics.AWS_THROTTLED.labels(*_labels(kwargs["operation"])).inc()


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ClientError, or '' for anything else."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def is_transient(exc: BaseException) -> bool:
    """Whether trying again later could succeed without anyone changing anything."""
    if isinstance(exc, EndpointConnectionError | BotoConnectionError | ReadTimeoutError):
        return True
    if isinstance(exc, ClientError):
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return (
            error_code(exc) in TRANSIENT_CODES
            or status >= 500
            or status == 429
            or transient_message(exc)
        )
    # An answer that does not parse (a proxy's error page, a cut-off body) refused
    # nothing; botocore retries it not at all (it is no BotoCoreError), so a pass does.
    return isinstance(exc, BotoCoreError | ResponseParserError)


def transient_message(exc: ClientError) -> bool:
    """Whether the code and the whole message are one of TRANSIENT_MESSAGES (never a substring)."""
    message = str(exc.response.get("Error", {}).get("Message", ""))
    code = error_code(exc)
    return any(code == known and pattern.fullmatch(message)
               for known, pattern in TRANSIENT_MESSAGES)
