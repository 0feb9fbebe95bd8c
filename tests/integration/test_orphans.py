"""The orphan scan and cleanup against moto, MariaDB and the real kube-apiserver.

Environments are made with the reconcilers (so their tags are exactly the operator's),
the manifests with the Kubernetes client; no operator runs. Other tests share the
emulator and leave their own tagged resources behind, so every assertion looks only at
this module's tenants, and every cleanup is limited to them.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pymysql
import pytest
from botocore.exceptions import ClientError
from prometheus_client import REGISTRY

from tests.kubeapi import api_for
from tests.platform.stack import REPO
from wpenv import aws, kube
from wpenv.api.models import GROUP, KIND, VERSION
from wpenv.aws import Clients
from wpenv.orphans import DELETION_ORDER, Item, cleanup, run_scan, scan, select
from wpenv.orphans.cleanup import DELETED, GONE, OWNED, SKIPPED, WOULD_ARCHIVE
from wpenv.orphans.scan import all_kinds
from wpenv.plan import TAG_RETAINED, names_for, sql_identifier, tags_for
from wpenv.reconcilers import registry
from wpenv.reconcilers.pool import pool_listeners
from wpenv.settings import Settings

pytestmark = pytest.mark.e2e

Found = set[tuple[str, str]]
# Kinds that go with another one: deleted with it, so their listing is always empty.
WITH_ANOTHER = frozenset({"UserPoolGroups", "UserPoolDomain", "UserPoolClient", "Autoscaling"})
# The kinds the scan lists, in deletion order: one item each per environment.
# The placement is a record in the status only: there is nothing of it in AWS to list.
LISTED = tuple(kind for kind in DELETION_ORDER
               if kind not in WITH_ANOTHER and registry.by_name(kind).in_aws)
EVERYTHING = frozenset(LISTED)
CONTAINER = "wordpress"
# What AWS answers for each kind's "no such resource", exactly.
NOT_FOUND = frozenset({
    "InvalidGroup.NotFound", "NoSuchEntity", "RuleNotFound", "TargetGroupNotFound",
    "AccessPointNotFound", "ResourceNotFoundException",
})


def tenant_id() -> str:
    return f"o{uuid.uuid4().hex[:10]}"


@dataclass
class Env:
    """One hand-made environment: where it claims to belong, and what was made for it."""

    namespace: str
    name: str
    tenant: str
    made: dict[str, str] = field(default_factory=dict)  # kind -> id (as the scan reports it)
    details: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def environment(self) -> str:
        return f"{self.namespace}.{self.name}"

    @property
    def found(self) -> Found:
        return set(self.made.items())


class World:
    """Environments and manifests a test makes; all removed afterwards, whatever happened.

    Resources are made by hand with boto3 and SQL, with the operator's names and tags
    (`names_for`, `tags_for`), so these tests do not depend on the reconcilers.
    """

    def __init__(
        self, settings: Settings, clients: Clients, api: Any, platform: dict[str, str]
    ) -> None:
        self.settings = settings
        self.clients = clients
        self.api = api
        self.platform = platform
        self.envs: list[Env] = []
        self.manifests: list[tuple[str, str]] = []

    def sql(self, statement: str, *args: str) -> list[tuple[Any, ...]]:
        """Run one statement as the platform's MySQL admin."""
        conn = pymysql.connect(
            host=self.platform["MYSQL_HOST"],
            port=int(self.platform["MYSQL_TCP_PORT"]),
            user=self.platform["MYSQL_USER"],
            password=self.platform["MYSQL_PWD"],
            autocommit=True,
        )
        try:
            with conn.cursor() as cursor:
                cursor.execute(statement, args or None)
                return list(cursor.fetchall())
        finally:
            conn.close()

    def provision(
        self,
        namespace: str,
        name: str,
        tenant: str,
        kinds: Collection[str] = EVERYTHING,
        *,
        users: int = 0,
    ) -> Env:
        """Make `kinds` of one environment, in creation order, tagged as the operator does."""
        env = Env(namespace, name, tenant)
        self.envs.append(env)
        names = names_for(namespace, name, tenant)
        tags = tags_for(namespace, name, tenant, self.settings)
        tag_list = [{"Key": k, "Value": v} for k, v in tags.items()]
        c, settings = self.clients, self.settings
        if "AccessPoint" in kinds:
            ap = c.efs.create_access_point(
                ClientToken=str(uuid.uuid4()),
                FileSystemId=settings.file_system_id,
                PosixUser={"Uid": names.posix_uid, "Gid": names.posix_uid},
                RootDirectory={"Path": names.access_point_root},
                Tags=[*tag_list, {"Key": "Name", "Value": names.access_point}],
            )
            env.made["AccessPoint"] = str(ap["AccessPointId"])
        if "SecurityGroup" in kinds:
            env.made["SecurityGroup"] = str(c.ec2.create_security_group(
                GroupName=names.security_group, Description="orphan test", VpcId=settings.vpc_id,
                TagSpecifications=[{"ResourceType": "security-group", "Tags": tag_list}],
            )["GroupId"])
        trust = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }]}
        if "TaskRole" in kinds:
            c.iam.create_role(  # as the operator makes it: under the tenant boundary
                RoleName=names.task_role, AssumeRolePolicyDocument=json.dumps(trust), Tags=tag_list,
                PermissionsBoundary=settings.role_permissions_boundary_arn,
            )
            policy = {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": "*",
            }]}
            c.iam.put_role_policy(  # an inline policy blocks DeleteRole until removed
                RoleName=names.task_role, PolicyName="wpenv-tenant",
                PolicyDocument=json.dumps(policy),
            )
            env.made["TaskRole"] = names.task_role
        if "ExecutionRole" in kinds:
            c.iam.create_role(
                RoleName=names.execution_role, AssumeRolePolicyDocument=json.dumps(trust),
                Tags=tag_list, PermissionsBoundary=settings.role_permissions_boundary_arn,
            )
            env.made["ExecutionRole"] = names.execution_role
        if "LogGroup" in kinds:
            c.logs.create_log_group(logGroupName=names.log_group, tags=tags)
            env.made["LogGroup"] = names.log_group
        if "DatabaseSecret" in kinds:
            env.made["DatabaseSecret"] = str(c.secretsmanager.create_secret(
                Name=names.db_secret, SecretString=json.dumps({"dbname": names.database}),
                Tags=tag_list,
            )["ARN"])
        if "SiteSecret" in kinds:
            env.made["SiteSecret"] = str(c.secretsmanager.create_secret(
                Name=names.site_secret, SecretString=json.dumps({"AUTH_KEY": "x"}),
                Tags=tag_list,
            )["ARN"])
        if "ClientSecret" in kinds:
            env.made["ClientSecret"] = str(c.secretsmanager.create_secret(
                Name=names.client_secret, SecretString=json.dumps({"client_id": "x"}),
                Tags=tag_list,
            )["ARN"])
        if "Database" in kinds:
            # One item: the database and its user share the `wp_...` name of a short tenant.
            assert names.database == names.database_user
            self.sql(f"CREATE DATABASE {sql_identifier(names.database)}")
            self.sql(f"CREATE USER {sql_identifier(names.database_user)}@'%%' IDENTIFIED BY %s",
                     uuid.uuid4().hex)
            self.sql(f"CREATE TABLE {sql_identifier(names.database)}.wp_posts (id INT)")
            env.made["Database"] = names.database
        if "TaskDefinition" in kinds:
            for image in ("wordpress:6.7-apache", "wordpress:6.8-apache"):  # two revisions
                c.ecs.register_task_definition(
                    family=names.task_family,
                    requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
                    cpu="256", memory="512",
                    containerDefinitions=[{
                        "name": CONTAINER, "image": image, "essential": True,
                        "portMappings": [{"containerPort": settings.container_port}],
                    }],
                    tags=[{"key": k, "value": v} for k, v in tags.items()],
                )
            env.made["TaskDefinition"] = names.task_family
        if "TargetGroup" in kinds:
            env.made["TargetGroup"] = str(c.elbv2.create_target_group(
                Name=names.target_group, Protocol="HTTP", Port=settings.container_port,
                VpcId=settings.vpc_id, TargetType="ip", Tags=tag_list,
            )["TargetGroups"][0]["TargetGroupArn"])
        if "ListenerRule" in kinds:
            env.made["ListenerRule"] = self._rule(env, tag_list)
        if "Service" in kinds:
            service = c.ecs.create_service(
                cluster=settings.cluster_name, serviceName=names.service,
                taskDefinition=names.task_family, desiredCount=1, launchType="FARGATE",
                networkConfiguration={"awsvpcConfiguration": {
                    "subnets": list(settings.private_subnet_ids),
                    "securityGroups": [env.made["SecurityGroup"]],
                    "assignPublicIp": "DISABLED",
                }},
                loadBalancers=[{
                    "targetGroupArn": env.made["TargetGroup"], "containerName": CONTAINER,
                    "containerPort": settings.container_port,
                }],
                tags=[{"key": k, "value": v} for k, v in tags.items()],
            )["service"]
            env.made["Service"] = str(service["serviceArn"])
        if "UserPool" in kinds:
            idp = c.cognito_idp
            pool_id = str(
                idp.create_user_pool(
                    PoolName=names.user_pool, UserPoolTags=tags, DeletionProtection="ACTIVE"
                )["UserPool"]["Id"]
            )
            env.made["UserPool"] = pool_id
            idp.create_user_pool_domain(Domain=names.user_pool_domain, UserPoolId=pool_id)
            env.details["UserPool"] = {"domain": names.user_pool_domain}
            for number in range(users):
                idp.admin_create_user(UserPoolId=pool_id, Username=f"user{number}")
        return env

    def _rule(self, env: Env, tag_list: list[dict[str, str]]) -> str:
        """A rule on the first pool listener, at a free priority (other tests race for one)."""
        listener = pool_listeners(self.clients, self.settings)[0]
        elbv2 = self.clients.elbv2
        for _ in range(5):
            rules = elbv2.describe_rules(ListenerArn=listener)["Rules"]
            used = [int(r["Priority"]) for r in rules if r["Priority"] != "default"]
            try:
                created = elbv2.create_rule(
                    ListenerArn=listener, Priority=max(used, default=0) + 1,
                    Conditions=[{"Field": "path-pattern", "Values": [f"/{env.tenant}/*"]}],
                    Actions=[{"Type": "forward", "TargetGroupArn": env.made["TargetGroup"]}],
                    Tags=tag_list,
                )
            except ClientError as exc:
                if aws.error_code(exc) != "PriorityInUse":
                    raise
                continue
            return str(created["Rules"][0]["RuleArn"])
        raise AssertionError("no free listener rule priority")

    def manifest(self, namespace: str, name: str, tenant: str) -> None:
        """A WordPressEnvironment object (no operator runs: it only has to exist)."""
        self.api.request(
            "POST", kube.environments(namespace),
            body={
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": KIND,
                "metadata": {"name": name},
                "spec": {"tenantId": tenant},
            },
        )
        self.manifests.append((namespace, name))

    def tag_retained(self, env: Env) -> None:
        """Tag the security group and the secret retained, as deletionPolicy Retain does."""
        tag = [{"Key": TAG_RETAINED, "Value": "true"}]
        self.clients.ec2.create_tags(Resources=[env.made["SecurityGroup"]], Tags=tag)
        self.clients.secretsmanager.tag_resource(SecretId=env.made["DatabaseSecret"], Tags=tag)

    def schema(self, name: str) -> tuple[bool, bool]:
        """(the database exists, the user exists), asked of MySQL directly."""
        database = self.sql("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
                            name)
        user = self.sql("SELECT 1 FROM mysql.user WHERE User = %s AND Host = '%%'", name)
        return bool(database), bool(user)

    def exists(self, kind: str, rid: str) -> bool:
        """Whether a resource still exists, asked of AWS or MySQL directly."""
        c = self.clients
        calls: dict[str, Callable[[], Any]] = {
            "SecurityGroup": lambda: c.ec2.describe_security_groups(GroupIds=[rid]),
            "TaskRole": lambda: c.iam.get_role(RoleName=rid),
            "ExecutionRole": lambda: c.iam.get_role(RoleName=rid),
            "LogGroup": lambda: c.logs.list_tags_log_group(logGroupName=rid),
            "ListenerRule": lambda: c.elbv2.describe_rules(RuleArns=[rid]),
            "TargetGroup": lambda: c.elbv2.describe_target_groups(TargetGroupArns=[rid]),
            "AccessPoint": lambda: c.efs.describe_access_points(AccessPointId=rid),
            "UserPool": lambda: c.cognito_idp.describe_user_pool(UserPoolId=rid),
        }
        if kind == "Database":  # the database and its user, both
            return all(self.schema(rid))
        if kind in ("DatabaseSecret", "ClientSecret", "SiteSecret"):
            calls[kind] = lambda: c.secretsmanager.describe_secret(SecretId=rid)
        if kind == "TaskDefinition":  # any revision left, ACTIVE or INACTIVE
            return any(
                c.ecs.list_task_definitions(familyPrefix=rid, status=status)["taskDefinitionArns"]
                for status in ("ACTIVE", "INACTIVE")
            )
        if kind == "Service":
            found = c.ecs.describe_services(cluster=self.settings.cluster_name, services=[rid])
            return any(s.get("status") == "ACTIVE" for s in found["services"])
        try:
            found = calls[kind]()
        except ClientError as exc:
            if aws.error_code(exc) in NOT_FOUND:
                return False
            raise
        return not (isinstance(found, dict) and found.get("DeletedDate"))

    def teardown(self) -> None:
        """Manifests, then whatever each kind still lists of what was made, in deletion order."""
        for namespace, name in self.manifests:
            with contextlib.suppress(Exception):
                self.api.request("DELETE", kube.environments(namespace, name))
        made = {(kind, rid) for env in self.envs for kind, rid in env.made.items()}
        for name, kind in all_kinds().items():
            with contextlib.suppress(Exception):
                for found in list(kind.managed(self.clients, self.settings)):
                    if (name, found.id) in made:
                        with contextlib.suppress(Exception):
                            kind.remove_tolerant(self.clients, self.settings, found.found)


@pytest.fixture(scope="session")
def kube_api(platform: dict[str, str]) -> kube.Api:
    """The Kubernetes API on the platform's kubeconfig (the CLI test's subprocess goes
    through `load_config` like the operator)."""
    return api_for(platform["KUBECONFIG"])


@pytest.fixture
def world(
    settings: Settings, clients: Clients, kube_api: Any, platform: dict[str, str]
) -> Iterator[World]:
    made = World(settings, clients, kube_api, platform)
    try:
        yield made
    finally:
        made.teardown()


def of(items: Iterable[Item], *tenants: str) -> Found:
    """(kind, id) of the items of `tenants` (other tests' leftovers share the emulator)."""
    return {(item.kind, item.id) for item in items if item.tenant in tenants}


def test_scan_reports_orphans_and_retained_but_not_what_a_manifest_owns(
    world: World, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    gone = world.provision(f"gone-{uuid.uuid4().hex[:6]}", "shop", tenant_id())
    owned = world.provision(namespace, "owned", tenant_id())
    world.manifest(namespace, "owned", owned.tenant)
    kept = world.provision(
        f"kept-{uuid.uuid4().hex[:6]}", "shop", tenant_id(),
        {"AccessPoint", "SecurityGroup", "DatabaseSecret", "Database"},
    )
    world.tag_retained(kept)
    # The manifest was deleted and re-created under the same name for another tenant:
    # the first tenant's leftovers are orphans even though the environment exists.
    reused = world.provision(namespace, "reused", tenant_id(), {"SecurityGroup"})
    world.manifest(namespace, "reused", tenant_id())

    with caplog.at_level("WARNING", logger="wpenv.orphans"):
        result = run_scan(world.settings, world.clients, world.api)

    assert result.complete, result.errors
    mine = (gone.tenant, owned.tenant, kept.tenant, reused.tenant)
    assert of(result.orphans, *mine) == gone.found | reused.found | {
        ("AccessPoint", kept.made["AccessPoint"])  # not tagged retained: an orphan
    }
    # The database and its user have no tags: retained with their tenant's resources.
    assert of(result.retained, *mine) == kept.found - {("AccessPoint", kept.made["AccessPoint"])}
    assert of(result.owned, *mine) == owned.found
    items = [i for i in result.orphans if i.tenant == gone.tenant]
    assert {i.environment for i in items} == {gone.environment}  # databases included
    # The database and its user are one item, which `remove` drops together.
    (database,) = (i for i in items if i.kind == "Database")
    assert (database.found.database, database.found.user) == (gone.made["Database"],) * 2
    assert not any(i.kind in ("Secret", "Role", "DatabaseUser") for i in result.orphans)
    (family,) = (i for i in items if i.kind == "TaskDefinition")
    assert len(family.details["revisions"]) == 2
    (pool,) = (i for i in items if i.kind == "UserPool")
    assert pool.details["domain"] == gone.details["UserPool"]["domain"]

    for kind in LISTED:
        count = sum(1 for item in items if item.kind == kind)
        value = REGISTRY.get_sample_value("wpenv_orphaned_resources", {"kind": kind})
        assert count == 1, kind
        assert value is not None and value >= count, kind  # other tests' orphans count too
    for kind in WITH_ANOTHER:  # listed with the kind they go with: never on their own
        assert REGISTRY.get_sample_value("wpenv_orphaned_resources", {"kind": kind}) == 0, kind
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert f"orphaned SecurityGroup {gone.made['SecurityGroup']}" in logged
    assert f"orphaned Database {gone.made['Database']}" in logged
    assert owned.made["SecurityGroup"] not in logged


def test_cleanup_dry_run_changes_nothing_and_execute_removes_only_orphans(
    world: World, namespace: str
) -> None:
    gone = world.provision(f"gone-{uuid.uuid4().hex[:6]}", "shop", tenant_id(), users=1)
    owned = world.provision(namespace, "owned", tenant_id())
    world.manifest(namespace, "owned", owned.tenant)
    kept = world.provision(
        f"kept-{uuid.uuid4().hex[:6]}", "shop", tenant_id(),
        {"SecurityGroup", "DatabaseSecret", "Database"},
    )
    world.tag_retained(kept)
    mine = (gone.tenant, owned.tenant, kept.tenant)
    args = (world.settings, world.clients, world.api)

    before = scan(*args)
    chosen = select(before.orphans, environments=[gone.environment])
    assert of(chosen, *mine) == gone.found  # the database joined its environment

    dry = cleanup(chosen, *args)
    assert [a.item.kind for a in dry] == list(LISTED)
    needing = {a.item.kind for a in dry if a.outcome == WOULD_ARCHIVE}
    assert needing == {"UserPool", "Database", "AccessPoint"}  # the pool has a user
    again = scan(*args)
    for found in ("orphans", "retained", "owned"):
        assert of(getattr(again, found), *mine) == of(getattr(before, found), *mine), found
    assert all(world.exists(kind, rid) for kind, rid in gone.found)
    pool = world.clients.cognito_idp.describe_user_pool(UserPoolId=gone.made["UserPool"])
    assert pool["UserPool"]["DeletionProtection"] == "ACTIVE"

    # For real: the data is archived (and verified) by the default archiver, then deleted.
    done = cleanup(chosen, *args, execute=True)
    assert {a.item.kind: a.outcome for a in done} == dict.fromkeys(LISTED, DELETED), [
        a.line() for a in done
    ]
    s3 = world.clients.s3
    for action in done:
        if action.item.kind not in needing:
            continue
        assert action.message.startswith("archived to s3://"), action.line()
        bucket, _, key = action.message.removeprefix("archived to s3://").partition("/")
        if action.item.kind == "UserPool":
            assert json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())["users"]
        else:
            manifest = json.loads(s3.get_object(Bucket=bucket, Key=f"{key}manifest.json")[
                "Body"].read())
            assert manifest["tenantId"] == gone.tenant
    # Gone for good: the database and its user both, the secrets without a recovery window.
    assert world.schema(gone.made["Database"]) == (False, False)
    for kind in ("DatabaseSecret", "ClientSecret"):
        with pytest.raises(ClientError) as raised:
            world.clients.secretsmanager.describe_secret(SecretId=gone.made[kind])
        assert aws.error_code(raised.value) == "ResourceNotFoundException", kind
    after = scan(*args)
    assert after.complete, after.errors
    assert of(after.orphans + after.retained + after.owned, gone.tenant) == set()
    assert of(after.owned, *mine) == owned.found
    assert of(after.retained, *mine) == kept.found
    for kind, rid in owned.found | kept.found:
        assert world.exists(kind, rid), kind

    # Retained resources handed to cleanup anyway are left alone.
    kept_items = select(after.retained, tenants=[kept.tenant])
    assert {a.outcome for a in cleanup(kept_items, *args, execute=True)} == {SKIPPED}
    assert world.exists("SecurityGroup", kept.made["SecurityGroup"])


def test_cleanup_checks_ownership_and_existence_again_before_each_delete(
    world: World, namespace: str
) -> None:
    late = world.provision(namespace, "late", tenant_id(), {"SecurityGroup"})
    vanished = world.provision(
        f"gone-{uuid.uuid4().hex[:6]}", "x", tenant_id(), {"DatabaseSecret"}
    )
    args = (world.settings, world.clients, world.api)
    items = select(scan(*args).orphans, tenants=[late.tenant, vanished.tenant])
    assert of(items, late.tenant, vanished.tenant) == late.found | vanished.found

    world.manifest(namespace, "late", late.tenant)  # created after the scan
    world.clients.secretsmanager.delete_secret(  # deleted by someone else after the scan
        SecretId=vanished.made["DatabaseSecret"], ForceDeleteWithoutRecovery=True
    )
    actions = {a.item.tenant: a.outcome for a in cleanup(items, *args, execute=True)}
    assert actions == {late.tenant: OWNED, vanished.tenant: GONE}
    assert world.exists("SecurityGroup", late.made["SecurityGroup"])


def test_cli_report_and_cleanup(world: World) -> None:
    gone = world.provision(
        f"gone-{uuid.uuid4().hex[:6]}", "shop", tenant_id(), {"SecurityGroup", "DatabaseSecret"}
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "wpenv.orphans", *args],
            cwd=REPO, env=dict(os.environ), capture_output=True, text=True, timeout=120,
            check=False,
        )

    report = run("report", "--json")
    assert report.returncode == 3, report.stderr  # 3: orphans found
    parsed = json.loads(report.stdout)
    assert parsed["complete"] is True
    assert {(o["kind"], o["id"]) for o in parsed["orphans"] if o["tenant"] == gone.tenant} == (
        gone.found
    )

    dry = run("cleanup", "--environment", gone.environment)
    assert dry.returncode == 0, dry.stderr
    assert f"would-delete: SecurityGroup {gone.made['SecurityGroup']}" in dry.stdout
    assert f"would-delete: DatabaseSecret {gone.made['DatabaseSecret']}" in dry.stdout
    assert world.exists("SecurityGroup", gone.made["SecurityGroup"])

    done = run("cleanup", "--environment", gone.environment, "--execute", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    actions = json.loads(done.stdout)["actions"]
    assert {(a["kind"], a["id"], a["outcome"]) for a in actions} == {
        (kind, rid, DELETED) for kind, rid in gone.found
    }
    assert not world.exists("SecurityGroup", gone.made["SecurityGroup"])
    # The secret is force-deleted (no recovery window): its name is free again at once.
    with pytest.raises(ClientError) as raised:
        world.clients.secretsmanager.describe_secret(SecretId=gone.made["DatabaseSecret"])
    assert aws.error_code(raised.value) == "ResourceNotFoundException"
