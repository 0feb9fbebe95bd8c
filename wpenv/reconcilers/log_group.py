"""The tenant's CloudWatch Logs log group: where its containers' `awslogs` driver writes.

ECS does not create the group a task definition names (unless told to, with a permission
the execution role then needs): a task whose log group does not exist stops before its
container starts. So the group is made here, before the task definition, with the
operator's tags and a retention (`WPENV_LOG_RETENTION_DAYS`), so a tenant's logs neither
vanish with no owner nor pile up forever. Its name is deterministic (`/wpenv/<tenant>`,
`wpenv.plan.Names.log_group`), unique per account and region, so it is found by name and
create adopts on `ResourceAlreadyExistsException`.

Observe reads the group (DescribeLogGroups by prefix, the exact name picked) and its tags
(ListTagsForResource); drift is the retention or a tag. The orphan scan lists groups by
the managed-by tag through the Resource Groups Tagging API, as for task definitions.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from wpenv import aws, reasons
from wpenv.errors import TransientError
from wpenv.plan import TAG_MANAGED_BY, names_for, tag_dict
from wpenv.reconcilers.base import Context, Found, Observation, Resource
from wpenv.settings import Settings

log = logging.getLogger(__name__)

GONE = "ResourceNotFoundException"
DUPLICATE = "ResourceAlreadyExistsException"
ARN_MARK = ":log-group:"
STALE = "log group {name}: {what} differ(s) from the plan"
VANISHED = "log group {name} was gone right after it was created"


@dataclass(frozen=True)
class Group:
    """A log group as found: name, ARN (without the `:*` of DescribeLogGroups' `arn`),
    retention in days (None: never expire), and tags (None: not read, as by the scan)."""

    name: str
    arn: str
    retention: int | None = None
    tags: Mapping[str, str] | None = field(default=None)


def group_arn(described: Mapping[str, Any]) -> str:
    """The ARN that tags and IAM take, of a DescribeLogGroups entry."""
    arn = described.get("logGroupArn") or str(described["arn"]).removesuffix(":*")
    return str(arn)


def name_of(arn: str) -> str:
    """`/wpenv/acme` of `arn:<partition>:logs:us-east-1:1:log-group:/wpenv/acme` (`:*` or not)."""
    return arn.partition(ARN_MARK)[2].removesuffix(":*")


def differences(wanted_tags: Mapping[str, str], retention: int, found: Group) -> list[str]:
    """What of the group differs from the plan: "retention", "tags" (no I/O)."""
    stale = []
    if found.retention != retention:
        stale.append("retention")
    have = found.tags or {}
    if any(have.get(key) != value for key, value in wanted_tags.items()):
        stale.append("tags")
    return stale


def describe(clients: Any, name: str, tags: Mapping[str, str] | None = None) -> Group | None:
    """The group called exactly `name`, with its tags; None when there is none.

    DescribeLogGroups filters by prefix only (`/wpenv/acme` also finds `/wpenv/acmecorp`);
    names sort first, so the exact one is on the first page whenever it exists. `tags`,
    when the caller knows them (it just created the group with them), saves reading them.
    """
    paginator = clients.logs.get_paginator("describe_log_groups")
    for page in paginator.paginate(logGroupNamePrefix=name):
        for described in page.get("logGroups", []):
            if described.get("logGroupName") != name:
                continue
            if tags is None:
                return _with_tags(clients, described)
            return _group(described, tags)
    return None


def _with_tags(clients: Any, described: Mapping[str, Any]) -> Group | None:
    """A described group with its tags (ListTagsForResource); None if it just went."""
    arn = group_arn(described)
    try:
        tags = clients.logs.list_tags_for_resource(resourceArn=arn).get("tags") or {}
    except ClientError as exc:
        if aws.error_code(exc) == GONE:
            return None
        raise
    return _group(described, tags)


def _group(described: Mapping[str, Any], tags: Mapping[str, str]) -> Group:
    retention = described.get("retentionInDays")
    return Group(str(described["logGroupName"]), group_arn(described),
                 None if retention is None else int(retention), dict(tags))


# The shared cache's listing: the tenants' groups by name prefix (DescribeLogGroups), with
# the tags of the operator's groups from the tagging API (GetResources), which
# DescribeLogGroups does not return; a group missing there is read on its own.
LISTED = "logs:DescribeLogGroups"
PREFIX = names_for("", "", "TENANT").log_group.partition("TENANT")[0]


def tenant_groups(clients: Any, settings: Settings) -> dict[str, Group]:
    """Log group name -> group with its tags, for the tenants' groups that carry our tags."""
    tags: dict[str, dict[str, str]] = {}
    pages = clients.resourcegroupstaggingapi.get_paginator("get_resources").paginate(
        TagFilters=[{"Key": TAG_MANAGED_BY, "Values": [settings.operator_name]}],
        ResourceTypeFilters=["logs"],
    )
    for page in pages:
        for mapping in page.get("ResourceTagMappingList", []):
            if ARN_MARK in str(mapping["ResourceARN"]):
                tags[name_of(str(mapping["ResourceARN"]))] = tag_dict(mapping.get("Tags"))
    groups = clients.logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=PREFIX)
    return {
        str(described["logGroupName"]): _group(described, tags[str(described["logGroupName"])])
        for page in groups for described in page.get("logGroups", [])
        if str(described["logGroupName"]) in tags
    }


class LogGroup(Resource, group="Compute", ids=("logGroupArn",), gone={GONE}, retainable=True):
    """CloudWatch Logs log group of one tenant's containers (condition group "Compute")."""

    def find_by_name(self, ctx: Context) -> Group | None:
        """The group of the deterministic name."""
        found: Group | None = self.cached(
            ctx, LISTED, PREFIX, ctx.names.log_group,
            bulk=lambda: tenant_groups(ctx.clients, ctx.settings),
            direct=lambda: describe(ctx.clients, ctx.names.log_group),
        )
        return found

    def inspect(self, ctx: Context, found: Group) -> Observation:
        """Stale when the retention or one of our tags differs."""
        stale = differences(ctx.tags, ctx.settings.log_retention_days, found)
        return Observation(
            exists=True,
            up_to_date=not stale,
            ids={"logGroupArn": found.arn},
            detail=STALE.format(name=found.name, what=", ".join(stale)) if stale else "",
            found=found,
        )

    def create(self, ctx: Context, observed: Observation) -> None:
        """Create the group with our tags (or adopt it), record it, then set the retention."""
        found: Group | None = observed.found
        if found is None:
            found = self._create(ctx)
        ctx.remember({"logGroupArn": found.arn})
        self._converge(ctx, found)

    def _create(self, ctx: Context) -> Group:
        """CreateLogGroup; on ResourceAlreadyExists (a pass we do not remember) the group."""
        name = ctx.names.log_group
        known: Mapping[str, str] | None = dict(ctx.tags)
        try:
            ctx.clients.logs.create_log_group(logGroupName=name, tags=dict(ctx.tags))
        except ClientError as exc:
            if aws.error_code(exc) != DUPLICATE:
                raise
            log.info("adopting log group %s", name)
            known = None  # someone else's tags, maybe: read them
        else:
            log.info("created log group %s", name)
        found = describe(ctx.clients, name, known)
        if found is None:  # deleted by someone between the two calls: the next pass makes it
            raise TransientError(reasons.AWS_RETRYING, VANISHED.format(name=name))
        return found

    def update(self, ctx: Context, observed: Observation) -> None:
        """Restore the retention and our tags."""
        ctx.remember({"logGroupArn": observed.found.arn})
        self._converge(ctx, observed.found)

    def _converge(self, ctx: Context, found: Group) -> None:
        """Write only what differs from what was found."""
        logs = ctx.clients.logs
        retention = ctx.settings.log_retention_days
        if found.retention != retention:
            logs.put_retention_policy(logGroupName=found.name, retentionInDays=retention)
        have = found.tags or {}
        missing = {k: v for k, v in ctx.tags.items() if have.get(k) != v}
        if missing:
            logs.tag_resource(resourceArn=found.arn, tags=missing)

    def remove(self, clients: Any, settings: Settings, found: Group) -> None:
        """DeleteLogGroup (its streams and events go with it)."""
        clients.logs.delete_log_group(logGroupName=found.name)
        log.info("deleted log group %s", found.name)

    def tag(self, ctx: Context, recorded: str, tags: Mapping[str, str]) -> None:
        """TagResource on the recorded group (the status records its ARN)."""
        ctx.clients.logs.tag_resource(resourceArn=recorded, tags=dict(tags))

    def managed(self, clients: Any, settings: Settings) -> Iterator[Found]:
        """Every log group with our managed-by tag, from the tagging API (one call a page)."""
        paginator = clients.resourcegroupstaggingapi.get_paginator("get_resources")
        pages = paginator.paginate(
            TagFilters=[{"Key": TAG_MANAGED_BY, "Values": [settings.operator_name]}],
            ResourceTypeFilters=["logs"],
        )
        for page in pages:
            for mapping in page.get("ResourceTagMappingList", []):
                arn = str(mapping["ResourceARN"])
                if ARN_MARK not in arn:
                    continue  # another CloudWatch Logs resource, not a group
                arn = arn.removesuffix(":*")
                tags = tag_dict(mapping.get("Tags"))
                yield Found(name_of(arn), Group(name_of(arn), arn, tags=tags), tags,
                            {"arn": arn})

    def refresh(self, clients: Any, settings: Settings, item: Found) -> Found | None:
        """The group as it is now, with its tags; None when it is gone."""
        found: Group = item.found
        now = describe(clients, found.name)
        if now is None:
            return None
        tags = dict(now.tags or {})
        return Found(now.name, now, tags, {"arn": now.arn})
