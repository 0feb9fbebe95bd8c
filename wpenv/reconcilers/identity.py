"""What the Cognito steps and the task definition share: the switch and the tenant's URL.

A module of its own so the task definition can use it without importing the Cognito
reconcilers (which import the task definition's comparison helper).
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from wpenv import aws
from wpenv.plan import Endpoint, url_for
from wpenv.reconcilers import pool
from wpenv.reconcilers.base import Context

# ELBv2's codes for a listener or load balancer that is gone (exact, never a substring).
LISTENER_GONE = frozenset({"ListenerNotFound", "LoadBalancerNotFound"})
# The ids the identity steps record, in creation order; the task definition needs them all.
IDENTITY_IDS = ("userPoolId", "userPoolClientId", "userPoolDomain", "clientSecretArn")


def enabled(ctx: Context) -> bool:
    """Whether the spec wants single sign-on (and so every Cognito step)."""
    return ctx.spec.identity.enabled


def tenant_url(ctx: Context) -> str:
    """The tenant's URL for OAuth redirects: where its placement answers.

    https on the placed load balancer's HTTPS listener, at that load balancer's DNS name:
    Cognito refuses http callback and sign-out URLs anywhere but on localhost. The
    placement comes first in every pass, so the URL is the final one from the start; its
    listener's port and protocol and its DNS name are read once per process.
    """
    listener = ctx.ids.get("listenerArn")
    endpoint: Endpoint | None = None
    if listener:
        try:
            endpoint = pool.endpoint(ctx.clients, str(listener))
        except LookupError:
            pass  # a vanished listener: routing repairs it, the URL follows next pass
        except ClientError as exc:
            if aws.error_code(exc) not in LISTENER_GONE:
                raise
    return url_for(ctx.spec, endpoint)
