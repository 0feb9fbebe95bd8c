"""The platform's one reading of an AWS request: service, operation, protocol, parameters.

Every layer of the platform's server that looks at a request (the journal, chaos, the
fidelity rules and the service-model validation) reads it here, once: :func:`read` buffers
a small body (putting an unread copy back for moto), describes the request and keeps the
description in the WSGI environ, so the layers below find it there instead of parsing again.

- ``service``: the SigV4 signing name from the credential scope (``ecs``,
  ``elasticloadbalancing``, ``cognito-idp``, ...); boto3 signs every call.
- ``protocol``: ``json`` (an ``X-Amz-Target`` header), ``rpc-v2-cbor`` (a
  ``smithy-protocol`` header), ``query`` or ``ec2`` (an ``Action`` parameter), or the REST
  protocol of the service's botocore model (``rest-json``, ``rest-xml``); "" when unknown.
- ``action``: the operation for the RPC protocols; for REST ones ``METHOD /path`` plus the
  query's key names (``PUT /bucket/key?tagging``), which the journal and chaos match on.
- :func:`operation` resolves a request to botocore's service and operation models (for REST,
  by matching the operations' ``requestUri`` templates), and :func:`parameters` decodes its
  input into the operation's input shape, for each protocol: JSON bodies, query and EC2
  flattened parameters, REST URI, query-string, header and body members.
Bodies of S3 and of anything over MAX_BODY are not buffered (streamed uploads stay streams).
"""

from __future__ import annotations

import io
import json
import re
import threading
import urllib.parse
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property
from typing import Any
from wsgiref.types import WSGIEnvironment

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape

ENVIRON_KEY = "wpenv.request"
MAX_BODY = 1 << 20
UNBUFFERED_SERVICES = frozenset({"s3"})
FORM_TYPE = "application/x-www-form-urlencoded"
ELBV2_VERSION = "2015-12-01"
# SigV4 signing names that are not botocore's service names.
SERVICE_NAMES = {"elasticfilesystem": "efs", "tagging": "resourcegroupstaggingapi",
                 "monitoring": "cloudwatch", "email": "ses"}
MISSING: Any = object()  # no value at all (as opposed to an empty one)


@dataclass(frozen=True)
class AwsRequest:
    """What the platform's layers see of one AWS request (fields in the module doc)."""

    target: str  # X-Amz-Target, "" for other protocols
    action: str
    host: str
    path: str
    body: bytes
    headers: Mapping[str, str]  # lower-case names
    service: str = "unknown"
    protocol: str = ""
    method: str = "POST"
    query: str = ""  # the raw query string
    content_type: str = ""
    form: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # query + form pairs

    def json(self) -> dict[str, Any]:
        """The body of a JSON-protocol request ({} when it is not a JSON object)."""
        return self._json

    @cached_property
    def _json(self) -> dict[str, Any]:
        try:
            value = json.loads(self.body or b"{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    @cached_property
    def params(self) -> dict[str, str]:
        """Flat parameters: a JSON body's top-level strings, or the query and form pairs."""
        if self.protocol == "json":
            return {k: v for k, v in self.json().items() if isinstance(v, str)}
        return dict(self.form)


# --- describing a request (wire level) -------------------------------------------------------


def signing_service(environ: WSGIEnvironment) -> str:
    """The service of the SigV4 credential scope (header, or a presigned URL's query)."""
    auth = str(environ.get("HTTP_AUTHORIZATION") or "")
    if "Credential=" in auth:
        credential = auth.split("Credential=", 1)[1].split(",", 1)[0].strip()
    else:
        query = urllib.parse.parse_qs(str(environ.get("QUERY_STRING") or ""))
        credential = (query.get("X-Amz-Credential") or [""])[0]
    parts = credential.split("/")
    # <key>/<date>/<region>/<service>/aws4_request
    return parts[3] if len(parts) == 5 else "unknown"


def describe(environ: WSGIEnvironment, body: bytes) -> AwsRequest:
    """The request in `environ`, whose body was read into `body` (b"" when not buffered)."""
    service = signing_service(environ)
    method = str(environ.get("REQUEST_METHOD") or "GET").upper()
    target = str(environ.get("HTTP_X_AMZ_TARGET") or "")
    content_type = str(environ.get("CONTENT_TYPE") or "")
    query = str(environ.get("QUERY_STRING") or "")
    path = str(environ.get("PATH_INFO") or "/")
    headers = {k[5:].replace("_", "-").lower(): str(v)
               for k, v in environ.items() if k.startswith("HTTP_")}
    if content_type:
        headers["content-type"] = content_type
    form = urllib.parse.parse_qsl(query, keep_blank_values=True)
    if content_type.startswith(FORM_TYPE) and not target:
        form += urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    action, protocol = _action(service, target, path, headers, form)
    if not action:
        keys = sorted({k for k, _ in urllib.parse.parse_qsl(query, keep_blank_values=True)})
        action = f"{method} {path}" + (f"?{'&'.join(keys)}" if keys else "")
        protocol = _rest_protocol(service)
    return AwsRequest(target, action, str(environ.get("HTTP_HOST") or ""), path, body, headers,
                      service, protocol, method, query, content_type, tuple(form))


def _action(service: str, target: str, path: str, headers: Mapping[str, str],
            form: list[tuple[str, str]]) -> tuple[str, str]:
    if target:
        return target.rpartition(".")[2], "json"
    if headers.get("smithy-protocol") == "rpc-v2-cbor":
        return path.rpartition("/operation/")[2], "rpc-v2-cbor"
    action = next((v for k, v in form if k == "Action"), "")
    if action:
        return action, "ec2" if service == "ec2" else "query"
    return "", ""


def _rest_protocol(service: str) -> str:
    model = service_model(service, "")
    protocol = str(model.metadata.get("protocol", "")) if model is not None else ""
    return protocol if protocol.startswith("rest-") else ""


def buffer_body(environ: WSGIEnvironment) -> bytes:
    """Read a small body and put an unread copy back for the layers below; b"" otherwise."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return b""
    if length <= 0 or length > MAX_BODY or signing_service(environ) in UNBUFFERED_SERVICES:
        return b""
    body: bytes = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def read(environ: WSGIEnvironment) -> AwsRequest:
    """The request of `environ`, described once per request (kept in the environ)."""
    known = environ.get(ENVIRON_KEY)
    if isinstance(known, AwsRequest):
        return known
    request = describe(environ, buffer_body(environ))
    environ[ENVIRON_KEY] = request
    return request


# --- botocore's models -----------------------------------------------------------------------


@cache
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


@cache
def available_services() -> frozenset[str]:
    """The services botocore has models of."""
    return frozenset(_session().get_available_services())


_LOADING = threading.Lock()  # request threads share botocore's one session


@cache
def _load(name: str) -> ServiceModel:
    with _LOADING:
        return _session().get_service_model(name)


def service_model(service: str, version: str) -> ServiceModel | None:
    """botocore's model of the API a signing name (and, for ELB, Version) stands for."""
    if service == "elasticloadbalancing":
        name = "elbv2" if version in ("", ELBV2_VERSION) else "elb"
    else:
        name = SERVICE_NAMES.get(service, service)
    return _load(name) if name in available_services() else None


@dataclass(frozen=True)
class Route:
    """One REST operation's requestUri, compiled: method, path regex, required query keys."""

    method: str
    pattern: re.Pattern[str]
    labels: dict[str, str]  # regex group -> URI label
    query: tuple[tuple[str, str | None], ...]
    headers: tuple[str, ...]  # required header members (CopyObject's x-amz-copy-source)
    weight: tuple[int, int, int]
    name: str


@cache
def _routes(model: ServiceModel) -> tuple[Route, ...]:
    routes = []
    for name in model.operation_names:
        operation_model = model.operation_model(name)
        http = operation_model.http
        uri = str(http.get("requestUri", "/"))
        path, _, query = uri.partition("?")
        regex, labels, literal = "", {}, 0
        for index, piece in enumerate(re.split(r"(\{[^}]+\})", path)):
            if piece.startswith("{"):
                label = piece[1:-1]
                group = f"g{index}"
                labels[group] = label.rstrip("+")
                regex += f"(?P<{group}>.+)" if label.endswith("+") else f"(?P<{group}>[^/]+)"
            else:
                regex += re.escape(piece)
                literal += len(piece)
        required = tuple((k, v or None) for k, _, v in
                         (pair.partition("=") for pair in query.split("&") if pair))
        headers = _required_headers(operation_model.input_shape)
        routes.append(Route(str(http.get("method", "POST")).upper(), re.compile(regex + "/?"),
                            labels, required, headers,
                            (len(required), len(headers), literal), name))
    return tuple(sorted(routes, key=lambda route: route.weight, reverse=True))


def _required_headers(shape: Shape | None) -> tuple[str, ...]:
    if shape is None:
        return ()
    required = shape.metadata.get("required", [])
    return tuple(str(shape.members[name].serialization.get("name", name)).lower()
                 for name in required
                 if shape.members[name].serialization.get("location") == "header")


def operation(request: AwsRequest) -> tuple[OperationModel, dict[str, str]] | None:
    """botocore's model of the request's operation, and (REST) its URI labels; None: unknown."""
    version = request.params.get("Version", "") if request.protocol in ("query", "ec2") else ""
    model = service_model(request.service, version)
    if model is None:
        return None
    if request.protocol in ("json", "query", "ec2", "rpc-v2-cbor"):
        if request.action not in model.operation_names:
            return None
        return model.operation_model(request.action), {}
    if not request.protocol:
        return None
    query = urllib.parse.parse_qs(request.query, keep_blank_values=True)
    for route in _routes(model):
        if route.method != request.method:
            continue
        found = route.pattern.fullmatch(request.path)
        if found is None:
            continue
        if all(key in query and (value is None or value in query[key])
               for key, value in route.query) and \
                all(header in request.headers for header in route.headers):
            labels = {route.labels[g]: urllib.parse.unquote(v)
                      for g, v in found.groupdict().items()}
            return model.operation_model(route.name), labels
    return None


# --- decoding the input into its shape -------------------------------------------------------


def parameters(request: AwsRequest) -> tuple[OperationModel, dict[str, Any]] | None:
    """The operation and its input as botocore would have it (member names as keys).

    JSON bodies keep their wire keys (botocore's names, bar a rare locationName: the
    validator looks up both). None when the operation or its input is unknown, or the
    protocol's bodies are not decoded here (rpc-v2-cbor).
    """
    found = operation(request)
    if found is None:
        return None
    model, labels = found
    shape = model.input_shape
    if shape is None or request.protocol == "rpc-v2-cbor":
        return None
    if request.protocol == "json":
        return model, request.json()
    if request.protocol in ("query", "ec2"):
        flat = {k: v for k, v in request.form if k not in ("Action", "Version")}
        value = _query(shape, flat, _prefixes(flat), "", request.protocol == "ec2")
        return model, value if isinstance(value, dict) else {}
    return model, _rest(shape, request, labels)


def _prefixes(flat: Mapping[str, str]) -> frozenset[str]:
    """Every dotted prefix of every key: which parts of a shape the request has at all."""
    found = set()
    for key in flat:
        parts = key.split(".")
        for end in range(1, len(parts) + 1):
            found.add(".".join(parts[:end]))
    return frozenset(found)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _query_name(member: Shape, name: str, ec2: bool) -> str:
    serial = member.serialization
    if ec2:
        if "queryName" in serial:
            return str(serial["queryName"])
        if "name" in serial:
            wire = str(serial["name"])
            return wire[:1].upper() + wire[1:]
        return name
    return str(serial.get("name", name))


def _query(shape: Shape, flat: Mapping[str, str], present: frozenset[str], prefix: str,
           ec2: bool) -> Any:
    """The value at `prefix` of botocore's query (or EC2) serialisation of `shape`."""
    if prefix and prefix not in present:
        return MISSING
    kind = shape.type_name
    if kind == "structure":
        out = {}
        for name, member in shape.members.items():
            value = _query(member, flat, present, _join(prefix, _query_name(member, name, ec2)),
                           ec2)
            if value is not MISSING:
                out[name] = value
        return out
    if kind == "list":
        return _query_list(shape, flat, present, prefix, ec2)
    if kind == "map":
        return _query_map(shape, flat, present, prefix)
    return scalar(shape, flat.get(prefix, ""))


def _indices(present: frozenset[str], prefix: str) -> list[int]:
    head = prefix + "."
    return sorted({int(key[len(head):]) for key in present
                   if key.startswith(head) and key[len(head):].isdigit()})


def _query_list(shape: Shape, flat: Mapping[str, str], present: frozenset[str], prefix: str,
                ec2: bool) -> list[Any]:
    member = shape.member
    if ec2 or shape.serialization.get("flattened"):
        base = prefix
        if not ec2 and member.serialization.get("name"):
            base = ".".join([*prefix.split(".")[:-1], str(member.serialization["name"])])
    else:
        base = _join(prefix, str(member.serialization.get("name", "member")))
    return [_query(member, flat, present, f"{base}.{i}", ec2) for i in _indices(present, base)]


def _query_map(shape: Shape, flat: Mapping[str, str], present: frozenset[str],
               prefix: str) -> dict[str, Any]:
    base = prefix if shape.serialization.get("flattened") else _join(prefix, "entry")
    key_name = str(shape.key.serialization.get("name", "key"))
    value_name = str(shape.value.serialization.get("name", "value"))
    out = {}
    for i in _indices(present, base):
        key = flat.get(f"{base}.{i}.{key_name}", "")
        out[key] = _query(shape.value, flat, present, f"{base}.{i}.{value_name}", False)
    return out


def scalar(shape: Shape, raw: str) -> Any:
    """A text value as its shape's type (the text itself when it does not parse)."""
    kind = shape.type_name
    try:
        if kind in ("integer", "long"):
            return int(raw)
        if kind in ("float", "double"):
            return float(raw)
    except ValueError:
        return raw
    if kind == "boolean":
        return raw.lower() == "true"
    return raw


def _rest(shape: Shape, request: AwsRequest, labels: Mapping[str, str]) -> dict[str, Any]:
    """A REST request's input: URI labels, query string, headers and the body's members."""
    query = urllib.parse.parse_qs(request.query, keep_blank_values=True)
    payload = shape.serialization.get("payload")
    out: dict[str, Any] = {}
    for name, member in shape.members.items():
        where = member.serialization.get("location")
        wire = str(member.serialization.get("name", name))
        if where == "uri" and wire in labels:
            out[name] = scalar(member, labels[wire])
        elif where == "querystring" and member.type_name == "list" and wire in query:
            out[name] = [scalar(member.member, v) for v in query[wire]]
        elif where == "querystring" and member.type_name != "map" and wire in query:
            out[name] = scalar(member, query[wire][0])
        elif where == "header" and wire.lower() in request.headers:
            out[name] = scalar(member, request.headers[wire.lower()])
    body = _rest_body(shape if payload is None else shape.members[payload], request)
    if payload is not None and body is not MISSING:
        out[payload] = body
    elif isinstance(body, dict):
        out.update({k: v for k, v in body.items() if k not in out})
    return out


def _rest_body(shape: Shape, request: AwsRequest) -> Any:
    if shape.type_name != "structure" or not request.body:
        return MISSING
    if request.protocol == "rest-json":
        return request.json()
    try:
        root = ElementTree.fromstring(request.body)
    except ElementTree.ParseError:
        return MISSING
    for element in root.iter():
        element.tag = element.tag.rpartition("}")[2]  # namespaces play no part in the shape
    return xml_value(shape, root)


def xml_value(shape: Shape, element: ElementTree.Element) -> Any:
    """The value of `element` as `shape` (botocore's rest-xml serialisation, read back)."""
    kind = shape.type_name
    if kind == "structure":
        out: dict[str, Any] = {}
        for name, member in shape.members.items():
            if member.serialization.get("xmlAttribute"):
                continue
            tag = str(member.serialization.get("name", name))
            if member.type_name == "list" and member.serialization.get("flattened"):
                items = element.findall(str(member.member.serialization.get("name", tag)))
                if items:
                    out[name] = [xml_value(member.member, item) for item in items]
                continue
            child = element.find(tag)
            if child is not None:
                out[name] = xml_value(member, child)
        return out
    if kind == "list":
        tag = str(shape.member.serialization.get("name", "member"))
        return [xml_value(shape.member, item) for item in element.findall(tag)]
    if kind == "map":
        key_tag = str(shape.key.serialization.get("name", "key"))
        value_tag = str(shape.value.serialization.get("name", "value"))
        entries = {}
        for entry in element.findall("entry"):
            key, value = entry.find(key_tag), entry.find(value_tag)
            if key is not None and value is not None:
                entries[key.text or ""] = xml_value(shape.value, value)
        return entries
    return scalar(shape, element.text or "")
