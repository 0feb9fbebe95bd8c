"""IAM CreateRole as the operator's credentials meet it: only with the tenant boundary.

The operator's IAM policy (manifests/overlays/production/iam-policy.json) allows
`iam:CreateRole` only with the condition `iam:PermissionsBoundary` naming the tenant
boundary policy, and denies it explicitly otherwise (statement DenyUnboundedRoles; IAM
User Guide, "Permissions boundaries for IAM entities"). moto evaluates no policy, so a
role created without the boundary would pass here and be refused on AWS with AccessDenied.

The platform therefore requires it once it is configured to: when the account holds the
managed policy BOUNDARY_POLICY (the bootstrap in tests/platform/aws.py creates it from
manifests/overlays/production/tenant-boundary.json), a CreateRole that carries the
operator's managed-by tag (the operator's own requests; the tests' and the bootstrap's
helpers make untagged roles) and names no boundary or another is refused with IAM's 403
AccessDenied "User: <caller> is not authorized to perform: iam:CreateRole on resource:
<role> with an explicit deny in an identity-based policy". Later changes of a role's
boundary are left to moto, so a test can make the drift the operator then repairs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.iam.models import iam_backends

if TYPE_CHECKING:  # the package imports this module while it defines Refusal
    from tests.platform.fidelity import Refusal

BOUNDARY_POLICY = "wpenv-tenant-boundary"
MANAGED_BY = "app.kubernetes.io/managed-by"
PARTITION = "aws"
CODE = "AccessDenied"
MESSAGE = (
    "User: {caller} is not authorized to perform: iam:CreateRole on resource: {resource} "
    "with an explicit deny in an identity-based policy"
)


def boundary_arn(account: str = DEFAULT_ACCOUNT_ID) -> str:
    """The ARN the boundary policy has in `account`."""
    return f"arn:{PARTITION}:iam::{account}:policy/{BOUNDARY_POLICY}"


def required_boundary(account: str = DEFAULT_ACCOUNT_ID) -> str | None:
    """The boundary every operator-made role must carry; None until the account has it."""
    arn = boundary_arn(account)
    backend = iam_backends[account][PARTITION]
    return arn if arn in backend.managed_policies else None


def _tags(form: dict[str, list[str]]) -> dict[str, str]:
    """Tags.member.N.Key / .Value of a query-protocol request."""
    tags = {}
    for key, values in form.items():
        if key.startswith("Tags.member.") and key.endswith(".Key"):
            value = form.get(key[: -len("Key")] + "Value", [""])[0]
            tags[values[0]] = value
    return tags


def creation_refusal(
    form: dict[str, list[str]], required: str | None, account: str = DEFAULT_ACCOUNT_ID
) -> Refusal | None:
    """AWS's answer to an operator CreateRole without the required boundary (else None)."""
    from tests.platform.fidelity import Refusal  # noqa: PLC0415 (see the import above)

    if required is None or MANAGED_BY not in _tags(form):
        return None
    if form.get("PermissionsBoundary", [""])[0] == required:
        return None
    name = form.get("RoleName", [""])[0]
    path = form.get("Path", ["/"])[0] or "/"
    resource = f"arn:{PARTITION}:iam::{account}:role{path}{name}"
    caller = f"arn:{PARTITION}:iam::{account}:user/moto"
    return Refusal(403, CODE, MESSAGE.format(caller=caller, resource=resource), query=True)


def refuse(request: Any) -> Refusal | None:
    """Refuse the operator's CreateRole requests that lack the tenant boundary."""
    signed_for_iam = "/iam/aws4_request" in request.headers.get("authorization", "")
    if request.action != "CreateRole" or request.target or not signed_for_iam:
        return None
    form = parse_qs(request.body.decode("utf-8", "replace"))
    return creation_refusal(form, required_boundary())
