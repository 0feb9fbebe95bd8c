"""The account and region a request is for, as moto itself decides them (not a rule).

Rules that read moto's backends need the same backend moto will use for the request: the
region of the SigV4 credential scope (`Credential=<key>/<date>/<region>/<service>/...`) and
the account moto maps the access key to (MOTO_ACCOUNT_ID, then the x-moto-account-id
header, then the key's IAM account, else moto's default account).
"""

from __future__ import annotations

import os
from typing import Any

from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.iam.models import get_account_id_from

DEFAULT_REGION = "us-east-1"
SCOPE_PARTS = 5  # key / date / region / service / aws4_request


def _credential(request: Any) -> list[str]:
    auth = str(request.headers.get("authorization") or "")
    if "Credential=" not in auth:
        return []
    parts = auth.split("Credential=", 1)[1].split(",", 1)[0].strip().split("/")
    return parts if len(parts) == SCOPE_PARTS else []


def region_of(request: Any) -> str:
    """The region the request was signed for (moto's default region when unsigned)."""
    parts = _credential(request)
    return parts[2] if parts else DEFAULT_REGION


def account_of(request: Any) -> str:
    """The account moto serves the request from."""
    if os.environ.get("MOTO_ACCOUNT_ID"):
        return os.environ["MOTO_ACCOUNT_ID"]
    if request.headers.get("x-moto-account-id"):
        return str(request.headers["x-moto-account-id"])
    parts = _credential(request)
    return get_account_id_from(parts[0]) if parts else DEFAULT_ACCOUNT_ID


def backend(backends: Any, request: Any) -> Any | None:
    """moto's backend of one service (`backends`, e.g. ec2_backends) for the request."""
    try:
        return backends[account_of(request)][region_of(request)]
    except Exception:  # a region that service does not have: let moto answer
        return None
