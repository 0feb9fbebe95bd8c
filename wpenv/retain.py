"""deletionPolicy Retain: leave everything in place, marked so nobody mistakes it for junk.

Every retainable kind recorded in status.resources gets the tag
`wpenv.bbws.io/retained=true` (the orphan scan reports such resources as retained, not as
orphans), through the kind's own `tag`. One that is already gone is skipped. The MySQL
database and the files cannot carry tags: the Event says they stay.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from botocore.exceptions import ClientError

from wpenv.plan import TAG_RETAINED
from wpenv.reconcilers.base import Context, Resource

log = logging.getLogger(__name__)


def retain(ctx: Context, resources: Sequence[Resource]) -> list[str]:
    """Tag every recorded resource as retained; the status keys of those tagged."""
    tags = {**ctx.tags, TAG_RETAINED: "true"}
    tagged = []
    for resource in resources:
        recorded = resource.recorded(ctx) if resource.retainable else None
        if not recorded:
            continue
        try:
            resource.tag(ctx, recorded, tags)
        except ClientError as exc:
            if not resource.is_gone(exc):
                raise
            log.info("%s %s is gone; nothing to tag", resource.kind, recorded)
            continue
        tagged.append(resource.ids[0])
    return tagged
