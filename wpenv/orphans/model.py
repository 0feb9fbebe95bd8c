"""Pure orphan logic: what was found, who owns it, what order to delete it in. No I/O.

An AWS resource carrying the operator's managed-by tag belongs to the environment named by
its `wpenv.bbws.io/environment` tag (`<namespace>.<name>`) *and* the tenant of its
`wpenv.bbws.io/tenant` tag: tenantId is immutable and names every resource, so an object
deleted and re-created under the same name with another tenant does not own the first
tenant's leftovers. MySQL databases and users carry no tags; they are matched by name
(`names_for(...).database` / `.database_user` of every existing manifest).

When in doubt the rules lean towards "owned": a resource whose tenant tag is missing is
owned by its environment, a manifest without a tenantId owns everything tagged with its
environment, and a resource without an environment tag is owned by any manifest of its
tenant. A false "owned" costs a day of waiting; a false "orphan" could cost a tenant.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from wpenv.plan import (
    TAG_ENVIRONMENT,
    TAG_MANAGED_BY,
    TAG_RETAINED,
    TAG_TENANT,
    clone_user,
    names_for,
)
from wpenv.reconcilers import registry
from wpenv.reconcilers.base import Found

# Every kind, in the order cleanup deletes them within one environment: the registry's
# creation order reversed, as every teardown has it. The service goes before its task
# definitions, rule, target group, secrets, access point, role and security group (tasks use
# all of them), the rule before its target group, the security group late (task ENIs keep
# it in use until they go).
DELETION_ORDER = tuple(kind.kind for kind in reversed(registry.KINDS))
# Kinds that hold a tenant's data: archived to S3 (and verified) before they are deleted.
# A user pool holds the tenant's user directory; one that reports no users holds nothing.
NEEDS_ARCHIVE = frozenset(kind.kind for kind in registry.KINDS if kind.archive)
# Kinds found by name on the MySQL server rather than by tag.
UNTAGGED = frozenset({"Database"})


@dataclass(frozen=True)
class Item:
    """One resource the operator made (by tag) or would have made (by MySQL name)."""

    kind: str
    id: str  # ARN, AWS id or name: whatever its delete call takes
    environment: str  # `<namespace>.<name>` from the tag; "" when unknown
    tenant: str  # from the tag (or derived from a MySQL name); "" when unknown
    retained: bool = False  # tagged retained=true: left behind on purpose
    details: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    # What the kind's `remove` takes (the same shape its observe finds); never reported.
    found: Any = field(default=None, compare=False, hash=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (`report --json`): names and ARNs only, never a secret."""
        return {
            "kind": self.kind,
            "id": self.id,
            "environment": self.environment,
            "tenant": self.tenant,
            "retained": self.retained,
            "details": dict(self.details),
        }


def needs_archive(item: Item) -> bool:
    """Whether deleting `item` would lose tenant data that must be archived first."""
    if item.kind == "UserPool":
        return item.details.get("users") != 0  # unknown counts as "has users"
    return item.kind in NEEDS_ARCHIVE


def item_of(kind: str, found: Found, operator: str) -> Item | None:
    """An Item from what a kind's listing found; None unless `operator` manages it.

    Tagged kinds must carry the managed-by tag; the database kind has no tags and is the
    operator's by its `wp_` name alone (its tenant is worked out by the scan).
    """
    tags = found.tags
    if kind not in UNTAGGED and tags.get(TAG_MANAGED_BY) != operator:
        return None
    return Item(
        kind=kind,
        id=found.id,
        environment=tags.get(TAG_ENVIRONMENT, ""),
        tenant=tags.get(TAG_TENANT, ""),
        retained=tags.get(TAG_RETAINED, "").lower() == "true",
        details=dict(found.details),
        found=found.found,
    )


@dataclass(frozen=True)
class Owners:
    """What the existing WordPressEnvironments own, read from the Kubernetes API."""

    # environment -> tenant ids of the manifests with that environment ("" = no tenantId)
    environments: Mapping[str, frozenset[str]] = field(default_factory=dict)
    tenants: frozenset[str] = frozenset()
    databases: frozenset[str] = frozenset()
    database_users: frozenset[str] = frozenset()

    def owns(self, item: Item) -> bool:
        """Whether an existing manifest owns `item` (the conservative rules above)."""
        if item.kind == "Database":
            return item.id in self.databases or item.id in self.database_users
        if not item.environment:
            return not item.tenant or item.tenant in self.tenants
        tenants = self.environments.get(item.environment)
        if tenants is None:
            return False
        return not item.tenant or "" in tenants or item.tenant in tenants


def owners_from(objects: Iterable[Mapping[str, Any]]) -> Owners:
    """Owners from WordPressEnvironment objects as the API returns them (dicts)."""
    environments: dict[str, set[str]] = {}
    tenants: set[str] = set()
    databases: set[str] = set()
    users: set[str] = set()
    for obj in objects:
        meta = obj.get("metadata") or {}
        namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        tenant = str((obj.get("spec") or {}).get("tenantId") or "")
        environments.setdefault(f"{namespace}.{name}", set()).add(tenant)
        if tenant:
            tenants.add(tenant)
            names = names_for(namespace, name, tenant)
            databases.add(names.database)
            users.update((names.database_user, clone_user(names.database_user)))  # and its clone
    return Owners(
        environments={env: frozenset(t) for env, t in environments.items()},
        tenants=frozenset(tenants),
        databases=frozenset(databases),
        database_users=frozenset(users),
    )


def mysql_names(tenants: Iterable[str]) -> dict[str, str]:
    """Database and user name -> tenant, for every tenant id we know of.

    User names longer than 32 characters are cut and hashed, so a name cannot always be
    turned back into a tenant; known tenants can always be turned into names.
    """
    known: dict[str, str] = {}
    for tenant in tenants:
        names = names_for("", "", tenant)
        known[names.database] = tenant
        known.update(dict.fromkeys((names.database_user, clone_user(names.database_user)), tenant))
    return known


def mysql_tenant(name: str, known: Mapping[str, str]) -> str:
    """The tenant a `wp_...` database or user belongs to (best effort, for the report)."""
    if name in known:
        return known[name]
    return name.removeprefix("wp_").replace("_", "-")  # tenant ids are DNS labels: no "_"


@dataclass
class ScanResult:
    """One scan: everything found with the operator's tags (or MySQL names), sorted."""

    orphans: list[Item] = field(default_factory=list)
    retained: list[Item] = field(default_factory=list)
    owned: list[Item] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # kind -> why it was not scanned
    kinds: tuple[str, ...] = DELETION_ORDER  # kinds that were scanned (or attempted)

    @property
    def complete(self) -> bool:
        """Every kind was scanned: no service or database refused to be read."""
        return not self.errors

    def counts(self) -> dict[str, int]:
        """Orphans per scanned kind, zeros included, for the gauge (errored kinds left out)."""
        counts = {kind: 0 for kind in self.kinds if kind not in self.errors}
        for item in self.orphans:
            if item.kind in counts:
                counts[item.kind] += 1
        return counts

    def as_dict(self) -> dict[str, Any]:
        """The JSON form of `report --json`."""
        return {
            "complete": self.complete,
            "orphans": [item.as_dict() for item in self.orphans],
            "retained": [item.as_dict() for item in self.retained],
            "ownedCount": len(self.owned),
            "errors": dict(self.errors),
        }


def classify(items: Iterable[Item], owners: Owners) -> tuple[list[Item], list[Item], list[Item]]:
    """(owned, retained, orphans), each in deletion order.

    MySQL items have no tags: they are retained when a retained resource of their tenant
    exists (deletionPolicy Retain keeps the database with the rest), and they take the
    environment of their tenant's unowned resources when exactly one environment has that
    tenant, so `cleanup --environment` removes the environment's database with the rest.
    """
    owned: list[Item] = []
    unowned: list[Item] = []
    for item in items:
        (owned if owners.owns(item) else unowned).append(item)
    tagged = [item for item in unowned if item.kind not in UNTAGGED]
    retained_tenants = {item.tenant for item in tagged if item.retained and item.tenant}
    environments: dict[str, set[str]] = {}
    for item in tagged:
        if item.tenant and item.environment:
            environments.setdefault(item.tenant, set()).add(item.environment)
    retained: list[Item] = []
    orphans: list[Item] = []
    for found in unowned:
        item = found
        if found.kind in UNTAGGED:
            envs = environments.get(found.tenant, set())
            item = dataclasses.replace(
                found,
                retained=found.tenant in retained_tenants,
                environment=next(iter(envs)) if len(envs) == 1 else "",
            )
        (retained if item.retained else orphans).append(item)
    return deletion_order(owned), deletion_order(retained), deletion_order(orphans)


def _order_key(item: Item) -> tuple[bool, str, int, str]:
    rank = DELETION_ORDER.index(item.kind) if item.kind in DELETION_ORDER else len(DELETION_ORDER)
    return (not item.environment, item.environment, rank, item.id)


def deletion_order(items: Iterable[Item]) -> list[Item]:
    """Grouped by environment (unknown last), each group in DELETION_ORDER."""
    return sorted(items, key=_order_key)


def select(
    items: Iterable[Item],
    *,
    environments: Collection[str] = (),
    kinds: Collection[str] = (),
    tenants: Collection[str] = (),
) -> list[Item]:
    """The items matching every filter given (an empty filter matches everything)."""
    return [
        item
        for item in items
        if (not environments or item.environment in environments)
        and (not kinds or item.kind in kinds)
        and (not tenants or item.tenant in tenants)
    ]


def describe(item: Item) -> str:
    """`Kind id (environment ns.name, tenant t)`, plus what the id alone does not say."""
    extra = ""
    if item.kind == "TaskDefinition":
        extra = f", {len(item.details.get('revisions', ()))} revision(s)"
    elif item.kind == "UserPool" and item.details.get("domain"):
        extra = f", domain {item.details['domain']}"
    elif item.kind == "AccessPoint" and item.details.get("rootPath"):
        extra = f", root {item.details['rootPath']}"
    elif item.kind == "Database" and item.details.get("database") is False:
        extra = ", user only"  # one item is a database and its user: say what is left
    elif item.kind == "Database" and item.details.get("user") is False:
        extra = ", no user"
    return (
        f"{item.kind} {item.id} (environment {item.environment or '-'}, "
        f"tenant {item.tenant or '-'}{extra})"
    )


def report_lines(orphans: Iterable[Item]) -> list[str]:
    """One human-readable line per item, in deletion order (retained ones say so)."""
    return [
        describe(item) + (" [retained]" if item.retained else "")
        for item in deletion_order(orphans)
    ]
