"""Single sign-on end to end through the engine, against the local platform (HLD 3.3).

A fresh environment gets its pool, groups, domain, app client and client secret before
anything else, and a task definition that names the secret by ARN; at the pool quota it
waits with nothing built; switching identity off exports the users and removes every
Cognito piece; switching it on again builds them anew.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import MakeCtx, aws_calls, roll_back_settled, writes
from tests.integration.identity import domain_owner, our_pools, read_secret, tear_down
from tests.integration.test_engine import leftovers
from wpenv import engine
from wpenv.conditions import FALSE, TRUE
from wpenv.reconcilers.base import Context
from wpenv.reconcilers.task_definition import BASE_CONFIG
from wpenv.reconcilers.user_pool import list_pools

pytestmark = pytest.mark.e2e
REDIRECT = "wp-admin/admin-ajax.php?action=openid-connect-authorize"
OFF = {"enabled": False}


def _converge(ctx: Context) -> engine.Outcome:
    """Passes until Ready (or a failure), as the operator's requeues would run them.

    The last pass's outcome, with the Events of every pass.
    """
    resources = engine.default_resources()
    outcome = engine.converge(ctx, resources)
    events = list(outcome.events)
    for _ in range(60):
        if outcome.ready or outcome.failure:
            break
        time.sleep(0.5)
        outcome = engine.converge(ctx, resources)
        events += outcome.events
    assert outcome.failure is None, outcome.failure
    assert outcome.ready, outcome.conditions
    outcome.events = events
    return outcome


def _same(make_ctx: MakeCtx, ctx: Context, **spec: Any) -> Context:
    """The environment again with another spec, carrying its recorded ids (its status)."""
    other = make_ctx(tenant=ctx.names.tenant, **spec)
    other.ids.update(ctx.ids)
    return other


def _condition(outcome: engine.Outcome, kind: str) -> Any:
    (found,) = [c for c in outcome.conditions if c.type == kind]
    return found


def _task_definition(ctx: Context) -> dict[str, Any]:
    arn = ctx.ids["taskDefinitionArn"]
    found = ctx.clients.ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
    return dict(found)


def _sso(revision: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """(environment, secrets) of the WordPress container that concern single sign-on."""
    (container,) = revision["containerDefinitions"]
    env = {e["name"]: e["value"] for e in container.get("environment") or []}
    secrets = {s["name"]: s["valueFrom"] for s in container.get("secrets") or []}
    sso_names = ("OIDC_", "WPENV_OIDC_", "WORDPRESS_CONFIG_EXTRA")
    return (
        {k: v for k, v in env.items() if k.startswith(sso_names)},
        {k: v for k, v in secrets.items() if k.startswith(sso_names)},
    )


def _client(ctx: Context) -> dict[str, Any]:
    found = ctx.clients.cognito_idp.describe_user_pool_client(
        UserPoolId=ctx.ids["userPoolId"], ClientId=ctx.ids["userPoolClientId"]
    )
    return dict(found["UserPoolClient"])


@pytest.fixture
def ctx(make_ctx: MakeCtx) -> Iterator[Context]:
    """A fresh environment (identity on by default); all of it removed afterwards."""
    context = make_ctx()
    yield context
    assert roll_back_settled(context, engine.default_resources())
    tear_down(context)


def test_fresh_environment_with_identity(ctx: Context) -> None:
    outcome = _converge(ctx)
    identity = _condition(outcome, "Identity")
    assert identity.status == TRUE, identity
    for kind in ("UserPool", "UserPoolGroups", "UserPoolDomain", "UserPoolClient",
                 "ClientSecret"):
        assert kind in identity.message

    idp = ctx.clients.cognito_idp
    pool_id = ctx.ids["userPoolId"]
    (pool,) = our_pools(ctx)
    assert pool["Id"] == pool_id and pool["UsernameAttributes"] == ["email"]
    groups = idp.list_groups(UserPoolId=pool_id, Limit=60)["Groups"]
    assert {g["GroupName"]: g["Precedence"] for g in groups} == {
        "Admin": 0, "Editor": 1, "Viewer": 2
    }
    assert ctx.ids["userPoolDomain"] == ctx.names.user_pool_domain
    assert domain_owner(ctx) == pool_id

    client = _client(ctx)
    assert client["AllowedOAuthFlows"] == ["code"]
    assert sorted(client["AllowedOAuthScopes"]) == ["email", "openid", "profile"]
    (callback,) = client["CallbackURLs"]
    (logout,) = client["LogoutURLs"]
    assert callback == logout + REDIRECT
    assert logout.endswith(f"/{ctx.names.tenant}/")
    assert logout.startswith("https://")  # the pool's listeners are HTTPS

    secret_arn = ctx.ids["clientSecretArn"]
    assert read_secret(ctx, secret_arn) == {
        "client_id": client["ClientId"], "client_secret": client["ClientSecret"]
    }

    revision = _task_definition(ctx)
    env, secrets = _sso(revision)
    assert secrets == {"OIDC_CLIENT_SECRET": f"{secret_arn}:client_secret::"}
    assert env["OIDC_CLIENT_ID"] == client["ClientId"]
    domain = f"https://{ctx.names.user_pool_domain}.auth.{ctx.settings.region}.amazoncognito.com"
    assert env["OIDC_ENDPOINT_LOGIN_URL"] == f"{domain}/oauth2/authorize"
    assert env["OIDC_ENDPOINT_TOKEN_URL"] == f"{domain}/oauth2/token"
    assert env["OIDC_ENDPOINT_USERINFO_URL"] == f"{domain}/oauth2/userInfo"
    assert env["OIDC_ENDPOINT_LOGOUT_URL"].startswith(
        f"{domain}/logout?client_id={client['ClientId']}&logout_uri=http"
    )
    assert env["WPENV_OIDC_ISSUER"].endswith(f".amazonaws.com/{pool_id}")
    assert json.loads(env["WPENV_OIDC_ROLE_MAP"])["Admin"] == "administrator"
    # The secret's value is nowhere in the task definition, nor in what the pass reports.
    assert client["ClientSecret"] not in json.dumps(revision, default=str)
    assert client["ClientSecret"] not in repr(outcome)

    with aws_calls(ctx.clients) as calls:
        idle = engine.converge(ctx, engine.default_resources())
    assert idle.ready and idle.events == []
    assert writes(calls) == [], f"an idle pass made writes: {writes(calls)}"
    assert "DescribeUserPool" in calls and "DescribeUserPoolClient" in calls


def test_at_the_pool_quota_the_environment_waits_with_nothing_built(ctx: Context) -> None:
    in_use = len(list_pools(ctx))
    ctx.settings = ctx.settings.model_copy(update={"user_pool_quota": in_use})
    outcome = engine.converge(ctx, engine.default_resources())
    assert outcome.failure is None
    assert outcome.retry_after is not None and outcome.retry_after > 0
    identity = _condition(outcome, "Identity")
    assert (identity.status, identity.reason) == (FALSE, "UserPoolQuotaReached")
    assert f"{in_use} of quota {in_use}" in identity.message
    ready = _condition(outcome, "Ready")
    assert (ready.status, ready.reason) == (FALSE, "UserPoolQuotaReached")
    # Only the placement on a load balancer is decided (a record in the status, nothing
    # in AWS); nothing is built.
    assert [e.message for e in outcome.events] == ["Placement created"]
    assert set(ctx.ids) == {"loadBalancerArn", "listenerArn"}
    assert leftovers(ctx) == []  # no pool, access point, security group, secret, ...
    assert len(list_pools(ctx)) == in_use

    ctx.settings = ctx.settings.model_copy(update={"user_pool_quota": in_use + 1})
    _converge(ctx)  # a pool is freed (here: the quota raised): it goes on by itself


def _users(ctx: Context) -> None:
    idp = ctx.clients.cognito_idp
    pool_id = ctx.ids["userPoolId"]
    for email, group in (("ada@example.com", "Admin"), ("bob@example.com", "Viewer")):
        idp.admin_create_user(UserPoolId=pool_id, Username=email, MessageAction="SUPPRESS",
                              UserAttributes=[{"Name": "email", "Value": email}])
        idp.admin_add_user_to_group(UserPoolId=pool_id, Username=email, GroupName=group)


def test_identity_off_exports_and_removes_it_on_builds_it_anew(
    ctx: Context, make_ctx: MakeCtx
) -> None:
    _converge(ctx)
    _users(ctx)
    first_pool = ctx.ids["userPoolId"]
    first_secret = ctx.ids["clientSecretArn"]
    client_secret = _client(ctx)["ClientSecret"]

    off = _same(make_ctx, ctx, identity=OFF)
    outcome = _converge(off)
    removed = [e.message for e in outcome.events if e.reason == "Removed"]
    assert len(removed) == 5, outcome.events
    assert _condition(outcome, "Identity").status == TRUE
    # The users went to the archive bucket first.
    (exported,) = [e.message for e in outcome.events if e.reason == "UsersExported"]
    uri = exported.rpartition(" ")[2]
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    assert bucket == off.settings.archive_bucket and key.endswith("/users.json")
    document = json.loads(off.clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    members = {u["attributes"]["email"]: u["groups"] for u in document["users"]}
    assert members == {"ada@example.com": ["Admin"], "bob@example.com": ["Viewer"]}
    assert client_secret not in json.dumps(document)
    # Then every Cognito piece, and the task definition lost its SSO settings.
    assert our_pools(off) == [] and domain_owner(off) is None
    secrets = off.clients.secretsmanager.list_secrets(
        Filters=[{"Key": "name", "Values": [off.names.client_secret]}]
    )["SecretList"]
    assert secrets == []
    for key_name in ("userPoolId", "userPoolClientId", "userPoolDomain", "clientSecretArn"):
        assert key_name not in off.ids
    assert _sso(_task_definition(off)) == ({"WORDPRESS_CONFIG_EXTRA": BASE_CONFIG}, {})

    with aws_calls(off.clients) as calls:
        idle = engine.converge(off, engine.default_resources())
    assert idle.ready and idle.events == [] and writes(calls) == []

    on = _same(make_ctx, off)
    _converge(on)
    assert on.ids["userPoolId"] != first_pool
    assert [p["Id"] for p in our_pools(on)] == [on.ids["userPoolId"]]
    assert domain_owner(on) == on.ids["userPoolId"]
    env, secrets_ref = _sso(_task_definition(on))
    assert env["OIDC_CLIENT_ID"] == on.ids["userPoolClientId"]
    assert secrets_ref == {"OIDC_CLIENT_SECRET": f"{on.ids['clientSecretArn']}:client_secret::"}
    assert read_secret(on, on.ids["clientSecretArn"])["client_id"] == on.ids["userPoolClientId"]
    assert on.ids["clientSecretArn"].rsplit("-", 1)[0] == first_secret.rsplit("-", 1)[0]
    ctx.ids.update(on.ids)  # the fixture's rollback removes what this pass made
