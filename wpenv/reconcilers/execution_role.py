"""The tenant's IAM task execution role: what ECS may do to start the tenant's tasks.

Before a container runs, ECS (the Fargate agent) pulls its image, reads the secrets the
task definition injects and opens the container's log stream, all with this role; the
application never holds these credentials. So the policy is exactly that, scoped to the
tenant: pull from ECR (an authorization token, which IAM grants only on `*`, and the
image's repository), write log streams in the tenant's own log group, and read the
secrets the container names: the database secret, the site secret (WordPress's keys,
salts and admin) and, with single sign-on, the OIDC client secret. A task whose
execution role cannot read a secret it names, or write to its log group, never starts
(ECS stops it with a ResourceInitializationError).

Secrets are named by their exact ARNs (Secrets Manager adds a random suffix to each), so
the role comes after both secrets in the registry; a secret re-created after a drift gets
a new ARN and this role follows it in the same pass, before the task definition names it.
The role work itself is wpenv.reconcilers.iam_role's.
"""

from __future__ import annotations

import re
from typing import Any

from wpenv import reasons
from wpenv.errors import TransientError
from wpenv.reconcilers import identity
from wpenv.reconcilers.base import Context
from wpenv.reconcilers.iam_role import TenantRole, allow, policy

WAITING_FOR_SECRETS = "the execution role of {tenant} names its secrets: {missing} not recorded yet"
# <account>.dkr.ecr.<region>.amazonaws.com[.cn]/<repository>[:tag|@digest]
_ECR_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com"
    r"(?:\.cn)?/(?P<repository>[^:@]+)"
)


def secret_arns(ctx: Context) -> list[str]:
    """The ARNs of the secrets the task definition injects (TransientError until recorded)."""
    keys = ["dbSecretArn", "siteSecretArn",
            *(["clientSecretArn"] if identity.enabled(ctx) else [])]
    missing = [key for key in keys if not ctx.ids.get(key)]
    if missing:
        raise TransientError(
            reasons.WAITING_FOR_DEPENDENCIES,
            WAITING_FOR_SECRETS.format(tenant=ctx.names.tenant, missing=", ".join(missing)),
        )
    return [str(ctx.ids[key]) for key in keys]


def repository_arn(image: str, region: str, account: str, partition: str = "aws") -> str:
    """The ECR repository an image is pulled from; this account's repositories otherwise.

    An image from another registry (Docker Hub, ECR Public) needs no ECR permission at all;
    the statement then grants this account's own repositories in the region, never more.
    """
    found = _ECR_IMAGE.match(image)
    if found is None:
        return f"arn:{partition}:ecr:{region}:{account}:repository/*"
    return (
        f"arn:{partition}:ecr:{found['region']}:{found['account']}"
        f":repository/{found['repository']}"
    )


def desired_policy(ctx: Context, account: str, partition: str = "aws") -> dict[str, Any]:
    """ECR pull, the tenant's log streams and its secrets: what starting a task takes."""
    secrets = secret_arns(ctx)
    region = ctx.settings.region
    log_group = f"arn:{partition}:logs:{region}:{account}:log-group:{ctx.names.log_group}:*"
    pull = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    return policy(
        # IAM has no narrower resource for GetAuthorizationToken.
        allow("EcrAuthorization", "ecr:GetAuthorizationToken", "*"),
        allow("PullImage", pull, repository_arn(ctx.spec.image, region, account, partition)),
        allow("WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], log_group),
        allow("ReadOwnSecrets", "secretsmanager:GetSecretValue", secrets),
    )


class ExecutionRole(
    TenantRole, ids=("executionRoleArn",), needs=("ClientSecret", "DatabaseSecret", "SiteSecret")
):
    """IAM task execution role of one tenant (condition group "Permissions").

    It needs every secret: its policy names them by ARN (the client secret only with
    single sign-on).
    """

    suffix = "-exec"
    description = "wpenv tenant {tenant}: ECS task execution role (image, secrets, logs)"
    document = staticmethod(desired_policy)

    def role_name(self, ctx: Context) -> str:
        """`wpenv-<tenant>-exec`."""
        return ctx.names.execution_role
