"""Archive an orphan's data before cleanup deletes it (nothing is deleted unarchived).

A database or an access point (whose directory holds the files) is archived with the
same code the finalizer uses, to `<prefix>/<namespace>/<name>/<timestamp>/`, the
namespace and name taken from the orphan's environment tag (`orphans/<tenant>` when it
has none); a user pool's users and groups are exported to users.json the same way.
The function raises when anything could not be verified: cleanup then deletes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from wpenv import reasons
from wpenv.archive.environment import archive_environment
from wpenv.archive.errors import ArchiveError
from wpenv.archive.hooks import put_users
from wpenv.archive.users import export_document
from wpenv.engine import make_context
from wpenv.orphans.model import Item
from wpenv.plan import archive_prefix
from wpenv.settings import Settings

NOTHING = "{kind} {id} holds no data this archiver knows how to keep"
NO_TENANT = "{kind} {id} names no tenant; archive it by hand"


def owner_of(item: Item) -> tuple[str, str]:
    """(namespace, name) the archive is filed under."""
    namespace, _, name = item.environment.partition(".")
    if namespace and name:
        return namespace, name
    return "orphans", item.tenant or item.id


def archive_orphan(item: Item, settings: Settings, clients: Any) -> str:
    """Archive and verify what `item` holds; the S3 location of the archive."""
    if not item.tenant:
        raise ArchiveError(
            reasons.ORPHAN_WITHOUT_TENANT, NO_TENANT.format(kind=item.kind, id=item.id)
        )
    namespace, name = owner_of(item)
    if item.kind in ("Database", "AccessPoint"):
        manifest = archive_environment(settings, clients, namespace, name, item.tenant)
        return f"s3://{manifest.bucket}/{manifest.prefix}/"
    if item.kind == "UserPool":
        ctx = make_context(namespace, name, {"tenantId": item.tenant, "identity": {}},
                           settings=settings, clients=clients)
        prefix = archive_prefix(settings, namespace, name, datetime.now(UTC))
        described = clients.cognito_idp.describe_user_pool(UserPoolId=item.id)["UserPool"]
        return put_users(ctx, prefix, export_document(clients, ctx, described))
    raise ArchiveError(reasons.NOTHING_TO_ARCHIVE, NOTHING.format(kind=item.kind, id=item.id))
