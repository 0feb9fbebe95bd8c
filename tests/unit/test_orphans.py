"""Orphan classification, ordering, reporting and the cleanup's dry run: no I/O."""

from __future__ import annotations

from typing import Any

import kopf
import pymysql
import pytest
from botocore.exceptions import ClientError

from wpenv import kube
from wpenv.errors import TransientError
from wpenv.orphans.__main__ import parser
from wpenv.orphans.cleanup import (
    SKIPPED,
    WOULD_ARCHIVE,
    WOULD_DELETE,
    WOULD_SKIP,
    cleanup,
    preview,
    refreshed,
    remove,
)
from wpenv.orphans.model import (
    DELETION_ORDER,
    NEEDS_ARCHIVE,
    UNTAGGED,
    Item,
    Owners,
    ScanResult,
    classify,
    deletion_order,
    item_of,
    mysql_names,
    mysql_tenant,
    needs_archive,
    owners_from,
    report_lines,
    select,
)
from wpenv.orphans.scan import all_kinds, safe_error
from wpenv.plan import (
    TAG_ENVIRONMENT,
    TAG_MANAGED_BY,
    TAG_RETAINED,
    TAG_TENANT,
    names_for,
    tag_dict,
    tags_for,
)
from wpenv.reconcilers import registry
from wpenv.reconcilers.base import Found, Resource
from wpenv.reconcilers.database import TENANT_NAME, Schema, drop_sql
from wpenv.settings import Settings

SETTINGS = Settings(operator_name="wpenv-operator", archive_bucket="arch", load_balancer_arns=[])
# An API server nobody listens on: whatever must not need Kubernetes fails if it calls it.
NOWHERE = kube.Api(kopf.ConnectionInfo(server="http://127.0.0.1:9"), retries=0)


def manifest(namespace: str, name: str, tenant: str | None) -> dict[str, Any]:
    spec = {"tenantId": tenant} if tenant else {}
    return {"metadata": {"namespace": namespace, "name": name}, "spec": spec}


# A tenant id long enough that its MySQL user name is cut and hashed (not its database's).
LONG = "a-very-long-tenant-id-of-32-char"


def item(kind: str, rid: str, env: str = "ns.a", tenant: str = "acme", **kw: Any) -> Item:
    return Item(kind, rid, env, tenant, **kw)


def test_item_of_reads_our_tags_and_ignores_everyone_elses() -> None:
    tags = tags_for("ns", "a", "acme", SETTINGS)
    group = {"GroupId": "sg-1"}
    found = item_of(
        "SecurityGroup", Found("sg-1", group, tags, {"name": "wpenv-acme"}), "wpenv-operator"
    )
    assert found == Item("SecurityGroup", "sg-1", "ns.a", "acme", retained=False)
    assert found is not None and found.details == {"name": "wpenv-acme"}
    assert found.found is group  # what the kind's `remove` takes, passed through
    assert "found" not in found.as_dict()  # never reported
    assert item_of("SecurityGroup", Found("sg-1", group, tags), "another-operator") is None
    shared = Found("sg-1", group, {"wpenv.bbws.io/shared": "true"})
    assert item_of("SecurityGroup", shared, "x") is None
    retained = Found("arn", {}, {**tags, TAG_RETAINED: "True"})
    kept = item_of("DatabaseSecret", retained, "wpenv-operator")
    assert kept is not None and kept.retained


def test_item_of_takes_a_database_by_its_name_alone() -> None:
    schema = Schema("wp_acme", "wp_acme")
    found = item_of("Database", Found("wp_acme", schema), "wpenv-operator")
    assert found == Item("Database", "wp_acme", "", "")  # tenant: worked out by the scan
    assert found is not None and found.found == schema


def test_tag_dict_reads_both_spellings() -> None:
    assert tag_dict([{"Key": "a", "Value": "1"}, {"key": "b", "value": "2"}]) == {
        "a": "1", "b": "2",
    }
    assert tag_dict(None) == {}


def test_owners_from_manifests() -> None:
    owners = owners_from([manifest("ns", "a", "acme"), manifest("other", "b", None)])
    assert owners.environments == {"ns.a": frozenset({"acme"}), "other.b": frozenset({""})}
    assert owners.tenants == {"acme"}
    assert owners.databases == {names_for("ns", "a", "acme").database} == {"wp_acme"}
    assert owners.database_users == {"wp_acme", "wp_acme_clone"}  # and the rotation's


@pytest.mark.parametrize(
    ("found", "owned"),
    [
        (item("SecurityGroup", "sg-1"), True),
        (item("SecurityGroup", "sg-2", env="ns.gone"), False),
        # Same object name re-created for another tenant: the old tenant's leftovers.
        (item("SecurityGroup", "sg-3", tenant="old"), False),
        # Missing tenant tag: the environment alone decides (lean towards owned).
        (item("SecurityGroup", "sg-4", tenant=""), True),
        # A manifest without tenantId owns everything tagged with its environment.
        (item("SecurityGroup", "sg-5", env="other.b", tenant="whoever"), True),
        # No environment tag: owned when any manifest has its tenant.
        (item("SecurityGroup", "sg-6", env=""), True),
        (item("SecurityGroup", "sg-7", env="", tenant="nobody"), False),
        # One Database item stands for a database and its user (same `wp_...` name).
        (item("Database", "wp_acme", env=""), True),
        (item("Database", "wp_gone", env="", tenant="gone"), False),
        # A long tenant's user has a cut name of its own: owned by that name too.
        (item("Database", names_for("", "", LONG).database, env="", tenant=LONG), True),
        (item("Database", names_for("", "", LONG).database_user, env="", tenant=LONG), True),
        (item("Database", names_for("", "", LONG + "x").database_user, env="", tenant=""),
         False),
    ],
)
def test_ownership(found: Item, owned: bool) -> None:
    owners = owners_from(
        [manifest("ns", "a", "acme"), manifest("other", "b", None), manifest("ns", "l", LONG)]
    )
    assert owners.owns(found) is owned


def test_classify_splits_owned_retained_and_orphans() -> None:
    owners = owners_from([manifest("ns", "a", "acme")])
    items = [
        item("SecurityGroup", "sg-owned"),
        item("SecurityGroup", "sg-orphan", env="ns.gone", tenant="gone"),
        item("DatabaseSecret", "arn-orphan", env="ns.gone", tenant="gone"),
        item("SecurityGroup", "sg-kept", env="ns.kept", tenant="kept", retained=True),
        # An owned resource tagged retained stays owned (a re-created manifest adopted it).
        item("ClientSecret", "arn-owned-kept", retained=True),
        Item("Database", "wp_gone", "", "gone"),
        Item("Database", "wp_kept", "", "kept"),
        Item("Database", "wp_acme", "", "acme"),
        Item("Database", "wp_stray", "", "stray"),
    ]
    owned, retained, orphans = classify(items, owners)
    assert {i.id for i in owned} == {"sg-owned", "arn-owned-kept", "wp_acme"}
    assert [(i.kind, i.id, i.environment) for i in retained] == [
        ("Database", "wp_kept", "ns.kept"),  # retained with its tenant, in its environment
        ("SecurityGroup", "sg-kept", "ns.kept"),
    ]
    assert [(i.kind, i.id, i.environment) for i in orphans] == [
        ("Database", "wp_gone", "ns.gone"),  # takes its tenant's only orphan environment
        ("DatabaseSecret", "arn-orphan", "ns.gone"),
        ("SecurityGroup", "sg-orphan", "ns.gone"),
        ("Database", "wp_stray", ""),  # no tagged resource of its tenant: no environment
    ]


def test_database_environment_stays_unknown_when_two_environments_share_a_tenant() -> None:
    items = [
        item("SecurityGroup", "sg-1", env="a.x", tenant="t"),
        item("SecurityGroup", "sg-2", env="b.x", tenant="t"),
        Item("Database", "wp_t", "", "t"),
    ]
    _, _, orphans = classify(items, Owners())
    assert next(i for i in orphans if i.kind == "Database").environment == ""


def test_deletion_order_follows_dependencies_per_environment() -> None:
    kinds = list(reversed(DELETION_ORDER))
    items = [item(kind, f"{kind}-1") for kind in kinds]
    items += [item("SecurityGroup", "sg-b", env="ns.b"), item("ListenerRule", "r-b", env="ns.b")]
    items.append(Item("Database", "wp_x", "", "x"))
    ordered = [(i.environment, i.kind) for i in deletion_order(items)]
    assert ordered == [
        *(("ns.a", kind) for kind in DELETION_ORDER),
        ("ns.b", "ListenerRule"),
        ("ns.b", "SecurityGroup"),
        ("", "Database"),  # unknown environment last
    ]
    position = {kind: index for index, kind in enumerate(DELETION_ORDER)}
    for before, after in [
        ("ListenerRule", "TargetGroup"),
        ("Service", "TargetGroup"),
        ("Service", "TaskDefinition"),
        ("Service", "TaskRole"),
        ("Service", "DatabaseSecret"),
        ("Service", "ClientSecret"),
        ("Service", "AccessPoint"),
        ("UserPoolClient", "UserPool"),
    ]:
        assert position[before] < position[after]
    # The security group goes after everything that runs tasks (their ENIs keep it in use).
    for compute in ("Autoscaling", "Service", "ListenerRule", "TargetGroup", "TaskDefinition"):
        assert position[compute] < position["SecurityGroup"], compute
    # The user is dropped before its database (one Database item removes both).
    assert [sql.split()[1] for sql in drop_sql("wp_acme", "wp_acme")] == ["USER", "DATABASE"]


def test_kinds_come_from_the_registry() -> None:
    assert tuple(kind.kind for kind in reversed(registry.KINDS)) == DELETION_ORDER
    assert {"UserPool", "AccessPoint", "Database"} == NEEDS_ARCHIVE
    assert {"Database"} == UNTAGGED
    assert not {"Secret", "Role", "DatabaseUser"} & set(DELETION_ORDER)


def test_every_kind_has_a_finder_in_deletion_order() -> None:
    kinds = all_kinds()
    assert tuple(kinds) == DELETION_ORDER
    assert all(resource.kind == name for name, resource in kinds.items())


def test_select_filters() -> None:
    items = [item("SecurityGroup", "1"), item("DatabaseSecret", "2", env="ns.b", tenant="b")]
    assert select(items) == items
    assert select(items, environments=["ns.b"]) == [items[1]]
    assert select(items, kinds=["SecurityGroup"]) == [items[0]]
    assert select(items, tenants=["b"], kinds=["SecurityGroup"]) == []


def test_report_lines() -> None:
    lines = report_lines([
        item("SecurityGroup", "sg-1"),
        item("TaskDefinition", "wpenv-acme", details={"revisions": ["r1", "r2"]}),
        Item("Database", "wp_x", "", "x", retained=True),
        Item("Database", "wp_u", "", "u", details={"database": False, "user": True}),
        Item("Database", "wp_d", "", "d", details={"database": True, "user": False}),
    ])
    assert lines == [
        "TaskDefinition wpenv-acme (environment ns.a, tenant acme, 2 revision(s))",
        "SecurityGroup sg-1 (environment ns.a, tenant acme)",
        "Database wp_d (environment -, tenant d, no user)",
        "Database wp_u (environment -, tenant u, user only)",
        "Database wp_x (environment -, tenant x) [retained]",
    ]


def test_mysql_names_map_back_to_tenants_even_when_cut() -> None:
    long = "a-very-long-tenant-id-of-32-char"
    assert len(long) == 32
    user = names_for("", "", long).database_user
    assert len(user) <= 32 and user != "wp_" + long.replace("-", "_")
    known = mysql_names([long, "acme"])
    assert mysql_tenant(user, known) == long
    assert mysql_tenant("wp_acme", known) == "acme"
    assert mysql_tenant("wp_shop_one", known) == "shop-one"  # unknown: derived
    assert TENANT_NAME.fullmatch(user) and TENANT_NAME.fullmatch("wp_shop_one")
    for name in ("wpv_abc", "wp_", "wp_Shop", "wp_a-b", "wordpress", "wp_x_"):
        assert not TENANT_NAME.fullmatch(name), name


def test_counts_fill_zeros_and_leave_out_kinds_not_scanned() -> None:
    result = ScanResult(
        orphans=[item("SecurityGroup", "1"), item("SecurityGroup", "2")],
        errors={"UserPool": "AccessDenied: no"},
    )
    counts = result.counts()
    assert counts["SecurityGroup"] == 2 and counts["DatabaseSecret"] == 0
    assert counts["ClientSecret"] == 0 and counts["Database"] == 0
    assert "UserPool" not in counts
    assert set(counts) == set(DELETION_ORDER) - {"UserPool"}
    assert not result.complete
    assert result.as_dict()["orphans"][0]["id"] == "1"


def test_safe_error_never_repeats_more_than_a_code() -> None:
    aws_error = ClientError(
        {"Error": {"Code": "DependencyViolation", "Message": "in use"}}, "DeleteSecurityGroup"
    )
    assert safe_error(aws_error) == "DependencyViolation: in use"
    mysql_error = pymysql.err.OperationalError(1045, "Access denied ... password hunter2")
    assert safe_error(mysql_error) == "MySQL error 1045"
    assert safe_error(ValueError("hunter2")) == "ValueError"
    waiting = TransientError("SecurityGroupInUse", "security group sg-1 is still used")
    assert safe_error(waiting) == "SecurityGroupInUse: security group sg-1 is still used"


def test_dry_run_lists_every_orphan_in_order_and_touches_nothing() -> None:
    orphans = [
        item("SecurityGroup", "sg-1"),
        item("AccessPoint", "fsap-1", details={"rootPath": "/tenants/acme"}),
        Item("Database", "wp_acme", "ns.a", "acme"),
        item("ListenerRule", "rule-1"),
        Item("SecurityGroup", "sg-anon", "", ""),
    ]
    # No clients and no Kubernetes API: a dry run must not need them.
    actions = cleanup(orphans, SETTINGS, None, NOWHERE)  # the default archiver: never called
    assert [(a.item.id, a.outcome) for a in actions] == [
        ("rule-1", WOULD_DELETE),
        ("wp_acme", WOULD_ARCHIVE),
        ("sg-1", WOULD_DELETE),
        ("fsap-1", WOULD_ARCHIVE),
        ("sg-anon", WOULD_SKIP),
    ]
    assert "by hand" in actions[4].message
    assert actions[0].line() == "would-delete: ListenerRule rule-1 (environment ns.a, tenant acme)"

    def archiver(found: Item, settings: Settings, clients: Any) -> str:
        raise AssertionError("a dry run archives nothing")

    with_archiver = cleanup(orphans, SETTINGS, None, NOWHERE, archiver=archiver)
    assert [a.outcome for a in with_archiver][1::2] == [WOULD_ARCHIVE, WOULD_ARCHIVE]
    # Without any archiver, data is skipped with a message that says what to archive.
    bare = [preview(o, SETTINGS, None) for o in orphans[1:3]]
    assert [a.outcome for a in bare] == [WOULD_SKIP, WOULD_SKIP]
    assert bare[1].message.startswith("needs archiving: use ")
    assert "dump database wp_acme into s3://arch/archives/" in bare[1].message
    assert "tenants/acme into s3://arch/archives/" in bare[0].message


class Recording(Resource):
    """A kind whose `refresh` records what cleanup asked and answers with `answer` tags."""

    def __init__(self, answer: dict[str, str] | None) -> None:
        self.kind = "TaskDefinition"  # type: ignore[misc]
        self.answer = answer
        self.asked: list[Found] = []

    def refresh(self, clients: Any, settings: Settings, item: Found) -> Found | None:
        self.asked.append(item)
        if self.answer is None:
            return None
        return Found(item.id, item.found, self.answer, {"revisions": ["r2"]})


def test_refresh_is_told_what_the_scan_saw() -> None:
    family = object()
    scanned = Item("TaskDefinition", "wpenv-acme", "ns.a", "acme", details={"revisions": ["r1"]},
                   found=family)
    kind = Recording(tags_for("ns", "a", "acme", SETTINGS))
    fresh = refreshed(kind, scanned, SETTINGS, None)
    (asked,) = kind.asked
    # The owner tags the scan read: a task definition family keeps only revisions still
    # tagged for that owner, so empty tags would make every family look gone.
    assert asked.id == "wpenv-acme" and asked.found is family
    assert (asked.tags[TAG_ENVIRONMENT], asked.tags[TAG_TENANT]) == ("ns.a", "acme")
    assert asked.tags[TAG_MANAGED_BY] == "wpenv-operator" and TAG_RETAINED not in asked.tags
    assert asked.details == {"revisions": ["r1"]}
    assert fresh == scanned and fresh is not None and fresh.details == {"revisions": ["r2"]}
    # Retained since the scan, gone, or no longer the operator's.
    kind.answer = {**tags_for("ns", "a", "acme", SETTINGS), TAG_RETAINED: "true"}
    assert (now := refreshed(kind, scanned, SETTINGS, None)) is not None and now.retained
    kind.answer = None
    assert refreshed(kind, scanned, SETTINGS, None) is None
    kind.answer = {TAG_MANAGED_BY: "another-operator"}
    assert refreshed(kind, scanned, SETTINGS, None) is None


def test_a_database_keeps_the_environment_the_scan_gave_it() -> None:
    class Database(Resource):

        def refresh(self, clients: Any, settings: Settings, item: Found) -> Found | None:
            assert item.tags == {}  # MySQL has no tags to compare
            return Found(item.id, Schema(None, item.id), {}, {"database": False, "user": True})

    scanned = Item("Database", "wp_acme", "ns.a", "acme", retained=True,
                   found=Schema("wp_acme", "wp_acme"))
    fresh = refreshed(Database(), scanned, SETTINGS, None)
    assert fresh is not None
    assert (fresh.environment, fresh.tenant, fresh.retained) == ("ns.a", "acme", True)
    assert fresh.found == Schema(None, "wp_acme")  # what `remove` drops now: the user only


def test_execute_skips_data_without_an_archiver_before_reading_anything() -> None:
    database = Item("Database", "wp_acme", "ns.a", "acme")
    action = remove(database, SETTINGS, None, NOWHERE, None)
    assert action.outcome == SKIPPED and action.message.startswith("needs archiving: use ")
    anonymous = remove(Item("DatabaseSecret", "arn", "", ""), SETTINGS, None, NOWHERE,
                       None)
    assert anonymous.outcome == SKIPPED


def test_data_holding_kinds_need_archiving() -> None:
    assert needs_archive(Item("Database", "wp_a", "ns.a", "a"))
    assert needs_archive(item("AccessPoint", "fsap-1"))
    assert needs_archive(item("UserPool", "p", details={"users": 3}))
    assert needs_archive(item("UserPool", "p"))  # count unknown: assume users
    assert not needs_archive(item("UserPool", "p", details={"users": 0}))
    assert not needs_archive(item("DatabaseSecret", "arn"))
    assert not needs_archive(item("ClientSecret", "arn"))
    assert not needs_archive(item("TaskRole", "wpenv-acme"))


def test_cli_arguments() -> None:
    args = parser().parse_args(
        ["cleanup", "--environment", "ns.a", "--kind", "DatabaseSecret", "--kind", "TaskRole",
         "--execute"]
    )
    assert args.execute and args.environment == ["ns.a"]
    assert args.kind == ["DatabaseSecret", "TaskRole"]
    assert not parser().parse_args(["cleanup"]).execute  # a dry run unless told
    assert parser().parse_args(["report", "--json"]).json
    for unknown in ("Bucket", "Secret", "DatabaseUser"):  # the old names are gone
        with pytest.raises(SystemExit):
            parser().parse_args(["cleanup", "--kind", unknown])
