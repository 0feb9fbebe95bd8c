"""Removing orphans: a dry run by default, deletes only with `execute=True`.

Before each delete the manifests are listed again and the resource is read again (the
kind's `refresh`): a WordPressEnvironment created since the scan, or a retained tag added
since, saves the resource; one already gone counts as done. Items are deleted per
environment in DELETION_ORDER (the registry's creation order reversed), each with its
kind's own `remove_tolerant`, so nothing goes while something else still uses it. One
failure does not stop the others; it is reported, and the next scan finds what is left.

Data is archived before it is deleted (HLD 5.4): a database, an access point (whose
directory holds the tenant's files) and a user pool with users go only after `archiver`
(by default `wpenv.orphans.archiver`) has put a verified copy in the archive bucket; with
no archiver they are skipped with "needs archiving".
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from wpenv import kube
from wpenv.orphans.model import UNTAGGED, Item, deletion_order, describe, item_of, needs_archive
from wpenv.orphans.scan import all_kinds, list_owners, safe_error
from wpenv.plan import TAG_ENVIRONMENT, TAG_MANAGED_BY, TAG_RETAINED, TAG_TENANT
from wpenv.reconcilers.base import Found, Resource
from wpenv.settings import Settings

log = logging.getLogger(__name__)

# Archives one data-holding orphan to the archive bucket, verifies the copy, and returns
# where it is (e.g. "s3://bucket/key"); raises when it cannot, and then nothing is deleted.
Archiver = Callable[[Item, Settings, Any], str]

WOULD_DELETE = "would-delete"
WOULD_ARCHIVE = "would-archive-and-delete"
WOULD_SKIP = "would-skip"
DELETED = "deleted"
GONE = "gone"
OWNED = "owned"
SKIPPED = "skipped"
FAILED = "failed"

NEEDS_ARCHIVING = (
    "needs archiving: use wpenv.archive to {what} into s3://{bucket}/{prefix}/ and verify "
    "it, then run this cleanup again once an archiver is plugged into "
    "wpenv.orphans.cleanup.default_archiver (or archive and delete it by hand)"
)
UNATTRIBUTED = (
    "carries neither an environment nor a tenant tag, so no owner can be ruled out; "
    "check it and delete it by hand"
)
NOW_OWNED = "a WordPressEnvironment owns it now; left alone"
NOW_RETAINED = "tagged retained since the scan; left alone"


def default_archiver() -> Archiver | None:
    """The archive step for data-holding orphans (wpenv.orphans.archiver).

    For a "Database" or "AccessPoint" item it dumps and verifies the tenant's database and
    tars its directory; for a "UserPool" item it exports users and groups. It returns the
    archive's location and raises if anything is not verified; then nothing is deleted.
    """
    from wpenv.orphans.archiver import archive_orphan  # noqa: PLC0415 (imports the engine)

    return archive_orphan


@dataclass(frozen=True)
class Action:
    """What cleanup did (or, in a dry run, would do) with one orphan."""

    item: Item
    outcome: str
    message: str = ""

    def line(self) -> str:
        """`outcome: Kind id (environment, tenant)[: message]`."""
        text = f"{self.outcome}: {describe(self.item)}"
        return f"{text}: {self.message}" if self.message else text

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (`cleanup --json`)."""
        return {"outcome": self.outcome, "message": self.message, **self.item.as_dict()}


def needs_archiving(item: Item, settings: Settings) -> str:
    """The message for a data-holding orphan no archiver can take yet."""
    if item.kind == "Database":
        what = f"dump database {item.id}"
    elif item.kind == "UserPool":
        what = f"export the users and groups of user pool {item.id}"
    else:
        root = str(item.details.get("rootPath") or "/tenants/" + item.tenant).lstrip("/")
        what = f"tar {settings.efs_mount_path / root}"
    return NEEDS_ARCHIVING.format(
        what=what,
        bucket=settings.archive_bucket or "<archive bucket>",
        prefix=settings.archive_prefix.strip("/"),
    )


def _unattributed(item: Item) -> bool:
    return not item.environment and not item.tenant


def preview(item: Item, settings: Settings, archiver: Archiver | None) -> Action:
    """The dry-run line for one orphan: reads nothing, changes nothing."""
    if _unattributed(item):
        return Action(item, WOULD_SKIP, UNATTRIBUTED)
    if needs_archive(item):
        if archiver is None:
            return Action(item, WOULD_SKIP, needs_archiving(item, settings))
        return Action(item, WOULD_ARCHIVE)
    return Action(item, WOULD_DELETE)


def remove(
    item: Item, settings: Settings, clients: Any, kube_api: kube.Api, archiver: Archiver | None
) -> Action:
    """Re-check ownership and state, archive if needed, delete; one Action either way."""
    if _unattributed(item):
        return Action(item, SKIPPED, UNATTRIBUTED)
    if needs_archive(item) and archiver is None:
        return Action(item, SKIPPED, needs_archiving(item, settings))
    kind = all_kinds()[item.kind]
    # Listing the manifests may fail: then nothing is deleted (the exception propagates).
    owners = list_owners(kube_api)
    try:
        fresh = refreshed(kind, item, settings, clients)
        if fresh is None:
            return Action(item, GONE, "already gone")
        if owners.owns(fresh) or owners.owns(item):
            return Action(item, OWNED, NOW_OWNED)
        if fresh.retained:
            return Action(item, SKIPPED, NOW_RETAINED)
        message = ""
        if needs_archive(fresh):
            if archiver is None:  # a user pool that has gained users since the scan
                return Action(item, SKIPPED, needs_archiving(fresh, settings))
            location = archiver(fresh, settings, clients)
            log.info("archived %s to %s", describe(fresh), location)
            message = f"archived to {location}"
        kind.remove_tolerant(clients, settings, fresh.found)
    except Exception as exc:  # one failure must not stop the other deletions
        error = safe_error(exc)
        log.warning("could not delete %s: %s", describe(item), error)
        return Action(item, FAILED, error)
    log.info("deleted orphaned %s", describe(fresh))
    return Action(item, DELETED, message)


def scanned_tags(item: Item, operator: str) -> dict[str, str]:
    """The owner tags the scan read off `item`, as a kind's `refresh` compares them.

    A task definition family is one item per owner: its refresh keeps only the revisions
    still tagged for the owner the scan saw, so it must be told who that was.
    """
    tags = {TAG_MANAGED_BY: operator}
    if item.environment:
        tags[TAG_ENVIRONMENT] = item.environment
    if item.tenant:
        tags[TAG_TENANT] = item.tenant
    if item.retained:
        tags[TAG_RETAINED] = "true"
    return tags


def refreshed(kind: Resource, item: Item, settings: Settings, clients: Any) -> Item | None:
    """The item as it is now (None: gone, or no longer the operator's)."""
    tags = {} if kind.kind in UNTAGGED else scanned_tags(item, settings.operator_name)
    found = kind.refresh(clients, settings, Found(item.id, item.found, tags, item.details))
    if found is None:
        return None
    fresh = item_of(kind.kind, found, settings.operator_name)
    if fresh is None or kind.kind not in UNTAGGED:
        return fresh
    return dataclasses.replace(fresh, environment=item.environment, tenant=item.tenant,
                               retained=item.retained)


def cleanup(
    orphans: Iterable[Item],
    settings: Settings,
    clients: Any,
    kube_api: kube.Api,
    *,
    execute: bool = False,
    archiver: Archiver | None = None,
) -> list[Action]:
    """Delete `orphans` (from a scan, already filtered) in dependency order.

    A dry run unless `execute`. `archiver` defaults to `default_archiver()`. Items that
    are not orphans (retained ones) are never passed here by the CLI; if they are, the
    re-check leaves them alone.
    """
    archive = archiver if archiver is not None else default_archiver()
    actions: list[Action] = []
    for item in deletion_order(orphans):
        if execute:
            actions.append(remove(item, settings, clients, kube_api, archive))
        else:
            actions.append(preview(item, settings, archive))
    return actions
