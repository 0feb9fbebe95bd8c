"""Requests as boto3 puts them on the wire, for the platform's parsers to read in unit tests.

botocore's own serializer renders the operation (JSON, query, EC2, REST-JSON, REST-XML);
the WSGI environ is what the platform's server would receive, signed for `service`.
"""

from __future__ import annotations

import io
import urllib.parse
from typing import Any
from wsgiref.types import WSGIEnvironment

from botocore.serialize import create_serializer

from tests.platform.requests import service_model

AUTH = (
    "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=00"
)


def environ_for(service: str, operation: str, params: dict[str, Any],
                version: str = "") -> WSGIEnvironment:
    """The WSGI environ of `operation` with `params`, serialised by botocore."""
    model = service_model(service, version)
    assert model is not None, service
    operation_model = model.operation_model(operation)
    wire = create_serializer(model.metadata["protocol"], include_validation=False)
    request = wire.serialize_to_request(params, operation_model)
    body = request["body"]
    if isinstance(body, dict):
        body = urllib.parse.urlencode(body).encode()
    elif isinstance(body, str):
        body = body.encode()
    query = urllib.parse.urlencode(request.get("query_string") or {}, doseq=True)
    path, _, inline = str(request["url_path"]).partition("?")
    query = "&".join(part for part in (inline, query) if part)
    environ: WSGIEnvironment = {
        "REQUEST_METHOD": request["method"],
        "PATH_INFO": urllib.parse.unquote(path),
        "QUERY_STRING": query,
        "HTTP_HOST": "localhost",
        "HTTP_AUTHORIZATION": AUTH.format(service=service),
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    for name, value in request["headers"].items():
        if name.lower() == "content-type":
            environ["CONTENT_TYPE"] = value
        else:
            environ["HTTP_" + name.upper().replace("-", "_")] = value
    if model.metadata["protocol"] in ("query", "ec2"):
        environ["CONTENT_TYPE"] = "application/x-www-form-urlencoded; charset=utf-8"
    return environ
