"""What the Cognito steps and the task definition share: the switch and the tenant's URL.

A module of its own so the task definition can use it without importing the Cognito
reconcilers (which import the task definition's comparison helper).
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from wpenv import aws
from wpenv.plan import url_for
from wpenv.reconcilers.base import Context
from wpenv.reconcilers.listener_rule import Endpoint, listener_endpoint

# DescribeListeners' code for a listener that is gone (exact: never a substring match).
LISTENER_GONE = "ListenerNotFound"
# The ids the identity steps record, in creation order; the task definition needs them all.
IDENTITY_IDS = ("userPoolId", "userPoolClientId", "userPoolDomain", "clientSecretArn")


def enabled(ctx: Context) -> bool:
    """Whether the spec wants single sign-on (and so every Cognito step)."""
    return ctx.spec.identity.enabled


def tenant_url(ctx: Context) -> str:
    """The tenant's URL for OAuth redirects; reads one listener's port and protocol, once.

    https on an HTTPS listener, which is what the shared ALB has: Cognito refuses http
    callback and sign-out URLs anywhere but on localhost. The identity steps run before
    routing, so on the first pass the tenant's listener is not known yet: the URL then uses
    the first listener of the pool, which is where new rules go until it holds its quota of
    rules. Once the rule is recorded its own listener is used, so a tenant placed on a later
    listener is corrected on the next pass (a client update and a new task definition
    revision, once).
    """
    listener = ctx.ids.get("listenerArn") or next(iter(ctx.settings.listener_arns), None)
    endpoint: Endpoint | None = None
    if listener:
        try:
            endpoint = listener_endpoint(ctx.clients, str(listener))
        except LookupError:
            pass  # a vanished listener: routing repairs it, the URL follows next pass
        except ClientError as exc:
            if aws.error_code(exc) != LISTENER_GONE:
                raise
    if endpoint is None:
        return url_for(ctx.spec, ctx.settings, None)
    return url_for(ctx.spec, ctx.settings, endpoint.port, endpoint.protocol)
