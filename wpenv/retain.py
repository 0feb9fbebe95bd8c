"""deletionPolicy Retain: leave everything in place, marked so nobody mistakes it for junk.

Every resource recorded in status.resources gets the tag `wpenv.bbws.io/retained=true`
(the orphan scan reports such resources as retained, not as orphans). Each service has its
own tagging call; one that is already gone is skipped. The MySQL database and the files
cannot carry tags: the Event says they stay.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from botocore.exceptions import ClientError

from wpenv import aws
from wpenv.plan import TAG_RETAINED
from wpenv.reconcilers.base import Context
from wpenv.reconcilers.user_pool import desired_settings

log = logging.getLogger(__name__)

Tags = dict[str, str]
Tagger = Callable[[Context, str, Tags], None]


def _kv(tags: Tags) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _ecs(ctx: Context, arn: str, tags: Tags) -> None:
    ctx.clients.ecs.tag_resource(
        resourceArn=arn, tags=[{"key": k, "value": v} for k, v in tags.items()]
    )


def _elb(ctx: Context, arn: str, tags: Tags) -> None:
    ctx.clients.elbv2.add_tags(ResourceArns=[arn], Tags=_kv(tags))


def _secret(ctx: Context, arn: str, tags: Tags) -> None:
    ctx.clients.secretsmanager.tag_resource(SecretId=arn, Tags=_kv(tags))


def _security_group(ctx: Context, group_id: str, tags: Tags) -> None:
    ctx.clients.ec2.create_tags(Resources=[group_id], Tags=_kv(tags))


def _role(ctx: Context, arn: str, tags: Tags) -> None:
    ctx.clients.iam.tag_role(RoleName=arn.rpartition("/")[2], Tags=_kv(tags))


def _access_point(ctx: Context, access_point_id: str, tags: Tags) -> None:
    ctx.clients.efs.tag_resource(ResourceId=access_point_id, Tags=_kv(tags))


def _user_pool(ctx: Context, pool_id: str, tags: Tags) -> None:
    # UpdateUserPool with every setting, as the UserPool reconciler sends them: it resets
    # what it is not sent. (TagResource would do, but moto does not implement it for pools.)
    settings = desired_settings(replace(ctx, tags=tags))
    ctx.clients.cognito_idp.update_user_pool(UserPoolId=pool_id, **settings)


# status.resources key -> how to tag what it names.
TAGGERS: Mapping[str, Tagger] = {
    "serviceArn": _ecs,
    "taskDefinitionArn": _ecs,
    "targetGroupArn": _elb,
    "listenerRuleArn": _elb,
    "dbSecretArn": _secret,
    "clientSecretArn": _secret,
    "securityGroupId": _security_group,
    "taskRoleArn": _role,
    "accessPointId": _access_point,
    "userPoolId": _user_pool,
}


def retain(ctx: Context) -> list[str]:
    """Tag every recorded resource as retained; the status keys of those tagged."""
    tags = {**ctx.tags, TAG_RETAINED: "true"}
    tagged = []
    for key, tagger in TAGGERS.items():
        value: Any = ctx.ids.get(key)
        if not value:
            continue
        try:
            tagger(ctx, str(value), tags)
        except ClientError as exc:
            if not aws.is_not_found(exc):
                raise
            log.info("%s %s is gone; nothing to tag", key, value)
            continue
        tagged.append(key)
    return tagged
