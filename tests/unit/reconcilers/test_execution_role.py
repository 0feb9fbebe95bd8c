"""The execution role's policy, without AWS: exactly what starting the tenant's task takes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from wpenv.engine import make_context
from wpenv.errors import TransientError
from wpenv.plan import names_for
from wpenv.reconcilers import execution_role as er
from wpenv.reconcilers import registry
from wpenv.reconcilers.base import Context
from wpenv.reconcilers.task_role import TaskRole
from wpenv.settings import Settings

ACCOUNT = "111122223333"
DB = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:wpenv/acme/database-AbCdEf"
OIDC = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:wpenv/acme/oidc-client-GhIjKl"
SITE = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:wpenv/acme/wordpress-MnOpQr"


def _ctx(tenant: str = "acme", *, identity: bool = True, image: str | None = None,
         ids: dict[str, str] | None = None) -> Context:
    settings = Settings(region="eu-west-1", load_balancer_arns=[])
    spec: dict[str, Any] = {"tenantId": tenant, "identity": {"enabled": identity}}
    if image:
        spec["image"] = image
    known = {"dbSecretArn": DB, "siteSecretArn": SITE, "clientSecretArn": OIDC} if ids is None \
        else ids
    return make_context("ns", tenant, spec, settings=settings, clients=None, ids=dict(known))


def _statements(ctx: Context) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in er.desired_policy(ctx, ACCOUNT)["Statement"]}


def test_exactly_ecr_pull_the_tenants_log_streams_and_its_secrets() -> None:
    by_sid = _statements(_ctx())
    assert set(by_sid) == {"EcrAuthorization", "PullImage", "WriteOwnLogs", "ReadOwnSecrets"}
    assert all(s["Effect"] == "Allow" and "Condition" not in s for s in by_sid.values())
    assert by_sid["EcrAuthorization"] == {
        "Sid": "EcrAuthorization", "Effect": "Allow",
        "Action": "ecr:GetAuthorizationToken", "Resource": "*",
    }
    assert sorted(by_sid["PullImage"]["Action"]) == [
        "ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
    ]
    logs = by_sid["WriteOwnLogs"]
    assert sorted(logs["Action"]) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert logs["Resource"] == "arn:aws:logs:eu-west-1:111122223333:log-group:/wpenv/acme:*"
    secrets = by_sid["ReadOwnSecrets"]
    assert secrets["Action"] == "secretsmanager:GetSecretValue"
    assert secrets["Resource"] == [DB, SITE, OIDC]  # exact ARNs, not a prefix


def test_no_permission_of_the_application_or_to_create_anything() -> None:
    text = json.dumps(er.desired_policy(_ctx(), ACCOUNT))
    for not_here in ("elasticfilesystem:", "logs:CreateLogGroup", "secretsmanager:*",
                     '"logs:*"', "iam:", "kms:"):
        assert not_here not in text
    # The one "*" resource is the authorization token, which IAM cannot scope.
    assert text.count('"Resource": "*"') == 1


def test_without_single_sign_on_only_the_database_and_site_secrets() -> None:
    ctx = _ctx(identity=False, ids={"dbSecretArn": DB, "siteSecretArn": SITE})
    assert _statements(ctx)["ReadOwnSecrets"]["Resource"] == [DB, SITE]


@pytest.mark.parametrize(("identity", "missing"), [
    (True, "clientSecretArn"), (True, "dbSecretArn"), (False, "dbSecretArn"),
    (False, "siteSecretArn"),
])
def test_waits_until_the_secrets_it_names_are_recorded(identity: bool, missing: str) -> None:
    known = {"dbSecretArn": DB, "siteSecretArn": SITE, "clientSecretArn": OIDC}
    ids = {k: v for k, v in known.items() if k != missing}
    with pytest.raises(TransientError) as raised:
        er.desired_policy(_ctx(identity=identity, ids=ids), ACCOUNT)
    assert raised.value.reason == "WaitingForDependencies"
    assert missing in str(raised.value)


def test_an_ecr_image_is_pulled_from_its_own_repository_only() -> None:
    image = "444455556666.dkr.ecr.eu-central-1.amazonaws.com/team/wordpress:6.8@sha256:" + "ab" * 32
    pull = _statements(_ctx(image=image))["PullImage"]
    assert pull["Resource"] == "arn:aws:ecr:eu-central-1:444455556666:repository/team/wordpress"
    other = _statements(_ctx(image="wordpress:6.8-apache"))["PullImage"]
    assert other["Resource"] == "arn:aws:ecr:eu-west-1:111122223333:repository/*"


def test_repository_arn_of_registry_forms() -> None:
    assert er.repository_arn(
        "111122223333.dkr.ecr.us-east-1.amazonaws.com/wp", "eu-west-1", "1", "aws"
    ) == "arn:aws:ecr:us-east-1:111122223333:repository/wp"
    assert er.repository_arn(
        "111122223333.dkr.ecr.cn-north-1.amazonaws.com.cn/wp:1", "cn-north-1", "1", "aws-cn"
    ) == "arn:aws-cn:ecr:cn-north-1:111122223333:repository/wp"
    assert er.repository_arn("public.ecr.aws/docker/library/wordpress:6", "eu-west-1", "9") == (
        "arn:aws:ecr:eu-west-1:9:repository/*"
    )


def test_another_tenant_gets_disjoint_resources() -> None:
    theirs = _ctx("acmecorp", ids={"dbSecretArn": DB.replace("acme", "acmecorp"),
                                   "siteSecretArn": SITE.replace("acme", "acmecorp"),
                                   "clientSecretArn": OIDC.replace("acme", "acmecorp")})
    mine, other = _statements(_ctx()), _statements(theirs)
    assert mine["WriteOwnLogs"]["Resource"] != other["WriteOwnLogs"]["Resource"]
    assert not set(mine["ReadOwnSecrets"]["Resource"]) & set(other["ReadOwnSecrets"]["Resource"])
    # The `:*` after the group name keeps tenant "acme" out of "/wpenv/acmecorp".
    assert str(mine["WriteOwnLogs"]["Resource"]).endswith("/wpenv/acme:*")


def test_declarations_and_a_name_apart_from_the_task_role() -> None:
    resource = er.ExecutionRole()
    assert resource.kind == "ExecutionRole" and resource.group == "Permissions"
    assert resource.ids == ("executionRoleArn",) and resource.retainable
    assert resource.gone == {"NoSuchEntity"}
    assert set(resource.needs) == {"ClientSecret", "DatabaseSecret", "SiteSecret"}
    names = names_for("ns", "x", "acme")
    assert resource.role_name(_ctx()) == names.execution_role == "wpenv-acme-exec"
    assert names.execution_role != names.task_role
    long = names_for("ns", "x", "a" * 32)
    assert len(long.execution_role) <= 64 and long.execution_role.endswith(resource.suffix)
    # Each role kind claims only its own roles in the orphan scan.
    assert not names.task_role.endswith(resource.suffix)
    assert not names.execution_role.endswith(TaskRole.suffix)


def test_registry_puts_it_after_the_secrets_and_before_the_task_definition() -> None:
    order = [kind.kind for kind in registry.KINDS]
    here = order.index("ExecutionRole")
    assert order.index("ClientSecret") < here and order.index("DatabaseSecret") < here
    assert order.index("SiteSecret") < here
    assert order.index("LogGroup") < order.index("TaskDefinition")
    assert here < order.index("TaskDefinition")
