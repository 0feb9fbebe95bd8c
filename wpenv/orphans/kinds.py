"""Finding, re-reading and deleting each kind of AWS resource the operator tags.

Each kind is listed with its own service's API, because the Resource Groups Tagging API
misses some (listener rules, user pools and IAM roles in moto; IAM in places in AWS) and
says nothing about state (a secret scheduled for deletion, a draining service). Only task
definitions come from the tagging API: listing every family's revisions one by one would
cost a call per revision.

Deletes work on the exact id the scan found, never on a name recomputed from the tenant:
two environments can share a tenant id, and a name would then reach the wrong one. Every
delete tolerates "already gone". `refresh` re-reads one resource right before cleanup
deletes it, so a retained tag or a new owner added since the scan is seen.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from botocore.exceptions import ClientError

from wpenv import aws
from wpenv.orphans.model import Item, tag_dict, tagged_item
from wpenv.plan import TAG_MANAGED_BY
from wpenv.settings import Settings

log = logging.getLogger(__name__)

TAGS_PER_CALL = 20  # ELB DescribeTags
SERVICES_PER_CALL = 10  # ECS DescribeServices
TASK_DEFINITIONS_PER_CALL = 10  # ECS DeleteTaskDefinitions
# Secrets go to a recovery window rather than at once: a cleanup mistake can be undone
# with RestoreSecret, and the DatabaseSecret step restores one of its name by itself.
SECRET_RECOVERY_DAYS = 7
GONE_AP_STATES = ("deleting", "deleted")
SERVICE_GONE = ("ServiceNotFoundException", "ServiceNotActiveException")


class Kind(Protocol):
    """One kind of resource: how the scan lists it and how cleanup removes it."""

    name: str

    def find(self, settings: Settings, clients: Any) -> Iterator[Item]:
        """Every resource of this kind managed by `settings.operator_name`."""
        ...

    def refresh(self, item: Item, settings: Settings, clients: Any) -> Item | None:
        """The resource as it is now (None: gone, or no longer ours)."""
        ...

    def delete(self, item: Item, settings: Settings, clients: Any) -> None:
        """Delete it (and what only it uses); already gone is success."""
        ...


def _chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _gone(exc: ClientError, *codes: str) -> bool:
    return aws.is_not_found(exc, *codes)


def _elb_tags(clients: Any, arns: Sequence[str]) -> dict[str, dict[str, str]]:
    """ARN -> tags for load balancer rules or target groups (20 per call)."""
    found: dict[str, dict[str, str]] = {}
    for batch in _chunks(arns, TAGS_PER_CALL):
        for description in clients.elbv2.describe_tags(ResourceArns=batch)["TagDescriptions"]:
            found[str(description["ResourceArn"])] = tag_dict(description.get("Tags"))
    return found


class ListenerRules:
    """Tenant rules on the shared listener pool (settings.listener_arns)."""

    name = "ListenerRule"

    def find(self, settings: Settings, clients: Any) -> Iterator[Item]:
        """Every non-default rule of every pool listener, by its tags."""
        paginator = clients.elbv2.get_paginator("describe_rules")
        for listener in settings.listener_arns:
            arns = [
                str(rule["RuleArn"])
                for page in paginator.paginate(ListenerArn=listener)
                for rule in page["Rules"]
                if not rule.get("IsDefault")
            ]
            for arn, tags in _elb_tags(clients, arns).items():
                item = tagged_item(
                    self.name, arn, tags, settings.operator_name, listenerArn=listener
                )
                if item is not None:
                    yield item

    def refresh(self, item: Item, settings: Settings, clients: Any) -> Item | None:
        """The rule's current tags; None when the rule is gone."""
        try:
            clients.elbv2.describe_rules(RuleArns=[item.id])
            tags = _elb_tags(clients, [item.id]).get(item.id, {})
        except ClientError as exc:
            if _gone(exc, "RuleNotFound"):
                return None
            raise
        return tagged_item(self.name, item.id, tags, settings.operator_name, **item.details)

    def delete(self, item: Item, settings: Settings, clients: Any) -> None:
        """DeleteRule."""
        try:
            clients.elbv2.delete_rule(RuleArn=item.id)
        except ClientError as exc:
            if not _gone(exc, "RuleNotFound"):
                raise


class Services:
    """ECS services in the shared cluster."""

    name = "Service"

    def find(self, settings: Settings, clients: Any) -> Iterator[Item]:
        """Every ACTIVE service of the cluster, by its tags (a draining one is going)."""
        paginator = clients.ecs.get_paginator("list_services")
        arns = [
            str(arn)
            for page in paginator.paginate(cluster=settings.cluster_name)
            for arn in page.get("serviceArns", [])
        ]
        for batch in _chunks(arns, SERVICES_PER_CALL):
            for service in self._describe(settings, clients, batch):
                item = self._item(service, settings)
                if item is not None:
                    yield item

    @staticmethod
    def _describe(settings: Settings, clients: Any, refs: list[str]) -> list[dict[str, Any]]:
        page = clients.ecs.describe_services(
            cluster=settings.cluster_name, services=refs, include=["TAGS"]
        )
        return [dict(s) for s in page.get("services", []) if s.get("status") == "ACTIVE"]

    def _item(self, service: dict[str, Any], settings: Settings) -> Item | None:
        return tagged_item(
            self.name,
            str(service["serviceArn"]),
            tag_dict(service.get("tags")),
            settings.operator_name,
            cluster=settings.cluster_name,
            serviceName=service.get("serviceName"),
        )

    def refresh(self, item: Item, settings: Settings, clients: Any) -> Item | None:
        """The service if still ACTIVE, with its current tags."""
        try:
            found = self._describe(settings, clients, [item.id])
        except ClientError as exc:
            if _gone(exc, *SERVICE_GONE, "ClusterNotFoundException"):
                return None
            raise
        return self._item(found[0], settings) if found else None

    def delete(self, item: Item, settings: Settings, clients: Any) -> None:
        """Drop its scalable target, scale to zero, delete (forced)."""
        cluster = str(item.details.get("cluster") or settings.cluster_name)
        name = item.details.get("serviceName") or item.id.rpartition("/")[2]
        scaling = clients.application_autoscaling
        resource_id = f"service/{cluster}/{name}"
        targets = scaling.describe_scalable_targets(
            ServiceNamespace="ecs", ResourceIds=[resource_id]
        )["ScalableTargets"]
        for target in targets:  # the target's policies go with it
            scaling.deregister_scalable_target(
                ServiceNamespace="ecs",
                ResourceId=resource_id,
                ScalableDimension=target["ScalableDimension"],
            )
        try:
            clients.ecs.update_service(cluster=cluster, service=item.id, desiredCount=0)
            clients.ecs.delete_service(cluster=cluster, service=item.id, force=True)
        except ClientError as exc:
            if not _gone(exc, *SERVICE_GONE, "ClusterNotFoundException"):
                raise


class TargetGroups:
    """ALB target groups."""

    name = "TargetGroup"

    def find(self, settings: Settings, clients: Any) -> Iterator[Item]:
        """Every target group of the account and region, by its tags."""
        paginator = clients.elbv2.get_paginator("describe_target_groups")
        names = {
            str(group["TargetGroupArn"]): str(group.get("TargetGroupName", ""))
            for page in paginator.paginate()
            for group in page["TargetGroups"]
        }
        for arn, tags in _elb_tags(clients, list(names)).items():
            item = tagged_item(self.name, arn, tags, settings.operator_name, name=names.get(arn))
            if item is not None:
                yield item

    def refresh(self, item: Item, settings: Settings, clients: Any) -> Item | None:
        """The group's current tags; None when it is gone."""
        try:
            clients.elbv2.describe_target_groups(TargetGroupArns=[item.id])
            tags = _elb_tags(clients, [item.id]).get(item.id, {})
        except ClientError as exc:
            if _gone(exc, "TargetGroupNotFound"):
                return None
            raise
        return tagged_item(self.name, item.id, tags, settings.operator_name, **item.details)

    def delete(self, item: Item, settings: Settings, clients: Any) -> None:
        """DeleteTargetGroup; ResourceInUse (a rule still forwards here) propagates."""
        try:
            clients.elbv2.delete_target_group(TargetGroupArn=item.id)
        except ClientError as exc:
            if not _gone(exc, "TargetGroupNotFound"):
                raise


def _family(arn: str) -> str:
    """`wpenv-acme` of `arn:...:task-definition/wpenv-acme:3`."""
    return arn.rpartition("/")[2].rpartition(":")[0]


class TaskDefinitions:
    """ECS task definition families: one item per family and owner, all its revisions."""

    name = "TaskDefinition"

    def find(self, settings: Settings, clients: Any) -> Iterator[Item]:
        """Tagged revisions from the tagging API, grouped by family and owner tags."""
        paginator = clients.resourcegroupstaggingapi.get_paginator("get_resources")
        groups: dict[tuple[str, str, str, bool], list[str]] = {}
        pages = paginator.paginate(
            TagFilters=[{"Key": TAG_MANAGED_BY, "Values": [settings.operator_name]}],
            ResourceTypeFilters=["ecs:task-definition"],
        )
        for page in pages:
            for mapping in page.get("ResourceTagMappingList", []):
                arn = str(mapping["ResourceARN"])
                found = tagged_item(
                    self.name, _family(arn), tag_dict(mapping.get("Tags")),
                    settings.operator_name,
                )
                if found is not None:
                    key = (found.id, found.environment, found.tenant, found.retained)
                    groups.setdefault(key, []).append(arn)
        for (family, environment, tenant, retained), arns in groups.items():
            yield Item(
                self.name, family, environment, tenant, retained,
                details={"revisions": sorted(arns)},
            )

    def refresh(self, item: Item, settings: Settings, clients: Any) -> Item | None:
        """The revisions that still exist with the same owner; ACTIVE ones noted."""
        revisions: list[str] = []
        active: list[str] = []
        retained = False
        for arn in item.details.get("revisions", ()):
            try:
                found = clients.ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
            except ClientError as exc:
                if _gone(exc) or aws.error_code(exc) == "ClientException":
                    continue
                raise
            status = found["taskDefinition"].get("status")
            now = tagged_item(self.name, item.id, tag_dict(found.get("tags")),
                              settings.operator_name)
            if now is None or status == "DELETE_IN_PROGRESS":
                continue
            if (now.environment, now.tenant) != (item.environment, item.tenant):
                continue  # re-tagged for someone else since the scan: not this item any more
            revisions.append(arn)
            retained = retained or now.retained
            if status == "ACTIVE":
                active.append(arn)
        if not revisions:
            return None
        return Item(
            self.name, item.id, item.environment, item.tenant, retained,
            details={"revisions": revisions, "active": active},
        )

    def delete(self, item: Item, settings: Settings, clients: Any) -> None:
        """Deregister the ACTIVE revisions, then delete them all where the API allows."""
        ecs = clients.ecs
        for arn in item.details.get("active", ()):
            try:
                ecs.deregister_task_definition(taskDefinition=arn)
            except ClientError as exc:
                if not (_gone(exc) or aws.error_code(exc) == "ClientException"):
                    raise
        for batch in _chunks(list(item.details.get("revisions", ())), TASK_DEFINITIONS_PER_CALL):
            try:
                # Revisions still used by a task come back in `failures`; ECS deletes them
                # once the tasks stop. INACTIVE revisions are harmless if this is missing.
                ecs.delete_task_definitions(taskDefinitions=batch)
            except ClientError as exc:
                code = aws.error_code(exc)
                if code in ("UnknownOperationException", "InvalidAction", "NotImplemented"):
                    return
                if not _gone(exc):
                    raise


class UserPools:
    """Cognito user pools (moto has no ListTagsForResource for them: UserPoolTags)."""

    name = "UserPool"

    def find(self, settings: Settings, clients: Any) -> Iterator[Item]:
        """Every user pool, by the UserPoolTags of DescribeUserPool."""
        paginator = clients.cognito_idp.get_paginator("list_user_pools")
        ids = [
            str(pool["Id"])
            for page in paginator.paginate(PaginationConfig={"PageSize": 60})
            for pool in page.get("UserPools", [])
        ]
        for pool_id in ids:
            item = self._read(pool_id, settings, clients)
            if item is not None:
                yield item

    def _read(self, pool_id: str, settings: Settings, clients: Any) -> Item | None:
        try:
            pool = clients.cognito_idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]
        except ClientError as exc:
            if _gone(exc, "ResourceNotFoundException"):
                return None
            raise
        return tagged_item(
            self.name,
            pool_id,
            dict(pool.get("UserPoolTags") or {}),
            settings.operator_name,
            name=pool.get("Name"),
            domain=pool.get("Domain"),
            customDomain=pool.get("CustomDomain"),
            users=pool.get("EstimatedNumberOfUsers"),
        )

    def refresh(self, item: Item, settings: Settings, clients: Any) -> Item | None:
        """The pool with its current tags and domains."""
        return self._read(item.id, settings, clients)

    def delete(self, item: Item, settings: Settings, clients: Any) -> None:
        """Domains first (a pool with a domain cannot be deleted), protection off, the pool.

        The operator turns deletion protection on against slips in the console; deleting
        an orphan on purpose lifts it. UpdateUserPool resets what it is not sent, so the
        tags go with it: should the delete then fail, the next scan still finds the pool.
        """
        idp = clients.cognito_idp
        for key in ("customDomain", "domain"):
            domain = item.details.get(key)
            if not domain:
                continue
            try:
                idp.delete_user_pool_domain(Domain=str(domain), UserPoolId=item.id)
            except ClientError as exc:
                if not _gone(exc, "ResourceNotFoundException"):
                    raise
        try:
            pool = idp.describe_user_pool(UserPoolId=item.id)["UserPool"]
            if pool.get("DeletionProtection") == "ACTIVE":
                idp.update_user_pool(
                    UserPoolId=item.id,
                    DeletionProtection="INACTIVE",
                    UserPoolTags=dict(pool.get("UserPoolTags") or {}),
                )
            idp.delete_user_pool(UserPoolId=item.id)
        except ClientError as exc:
            if not _gone(exc, "ResourceNotFoundException"):
                raise


class Secrets:
    """Secrets Manager secrets (database credentials, OIDC client secrets)."""

    name = "Secret"

    def find(self, settings: Settings, clients: Any) -> Iterator[Item]:
        """Secrets with our managed-by key; those scheduled for deletion are left out."""
        paginator = clients.secretsmanager.get_paginator("list_secrets")
        pages = paginator.paginate(Filters=[{"Key": "tag-key", "Values": [TAG_MANAGED_BY]}])
        for page in pages:
            for secret in page.get("SecretList", []):
                if secret.get("DeletedDate"):
                    continue
                item = tagged_item(
                    self.name, str(secret["ARN"]), tag_dict(secret.get("Tags")),
                    settings.operator_name, name=secret.get("Name"),
                )
                if item is not None:
                    yield item

    def refresh(self, item: Item, settings: Settings, clients: Any) -> Item | None:
        """The secret's current tags; None when gone or already scheduled for deletion."""
        try:
            secret = clients.secretsmanager.describe_secret(SecretId=item.id)
        except ClientError as exc:
            if _gone(exc, "ResourceNotFoundException"):
                return None
            raise
        if secret.get("DeletedDate"):
            return None
        return tagged_item(
            self.name, item.id, tag_dict(secret.get("Tags")), settings.operator_name,
            **item.details,
        )

    def delete(self, item: Item, settings: Settings, clients: Any) -> None:
        """Schedule deletion with a recovery window (see SECRET_RECOVERY_DAYS)."""
        try:
            clients.secretsmanager.delete_secret(
                SecretId=item.id, RecoveryWindowInDays=SECRET_RECOVERY_DAYS
            )
        except ClientError as exc:
            # InvalidRequestException: already scheduled for deletion.
            if not (_gone(exc, "ResourceNotFoundException")
                    or aws.error_code(exc) == "InvalidRequestException"):
                raise


class Roles:
    """IAM roles (ListRoles carries no tags: ListRoleTags per role)."""

    name = "Role"

    def find(self, settings: Settings, clients: Any) -> Iterator[Item]:
        """Every role of the account, by its tags."""
        paginator = clients.iam.get_paginator("list_roles")
        roles = [
            (str(role["RoleName"]), str(role["Arn"]))
            for page in paginator.paginate()
            for role in page.get("Roles", [])
        ]
        for name, arn in roles:
            item = self._read(name, arn, settings, clients, listing=True)
            if item is not None:
                yield item

    def _read(
        self, name: str, arn: str, settings: Settings, clients: Any, listing: bool = False
    ) -> Item | None:
        """The role as an Item. While listing, a role whose tags we may not read is skipped:
        the operator's IAM policy is usually scoped to its own `wpenv-*` roles, and a role
        outside that scope cannot be one it made.
        """
        try:
            pages = clients.iam.get_paginator("list_role_tags").paginate(RoleName=name)
            tags = tag_dict(tag for page in pages for tag in page.get("Tags", []))
        except ClientError as exc:
            if _gone(exc, "NoSuchEntity"):
                return None
            if listing and aws.error_code(exc) in ("AccessDenied", "AccessDeniedException"):
                log.debug("orphan scan: may not read the tags of role %s; not ours", name)
                return None
            raise
        return tagged_item(self.name, name, tags, settings.operator_name, arn=arn)

    def refresh(self, item: Item, settings: Settings, clients: Any) -> Item | None:
        """The role's current tags; None when it is gone."""
        return self._read(item.id, str(item.details.get("arn", "")), settings, clients)

    def delete(self, item: Item, settings: Settings, clients: Any) -> None:
        """Inline policies, attached policies and instance profiles off, then the role."""
        iam = clients.iam
        name = item.id
        try:
            inline = [
                str(policy)
                for page in iam.get_paginator("list_role_policies").paginate(RoleName=name)
                for policy in page.get("PolicyNames", [])
            ]
            for policy in inline:
                iam.delete_role_policy(RoleName=name, PolicyName=policy)
            attached = [
                str(policy["PolicyArn"])
                for page in iam.get_paginator("list_attached_role_policies").paginate(
                    RoleName=name
                )
                for policy in page.get("AttachedPolicies", [])
            ]
            for arn in attached:
                iam.detach_role_policy(RoleName=name, PolicyArn=arn)
            profiles = [
                str(profile["InstanceProfileName"])
                for page in iam.get_paginator("list_instance_profiles_for_role").paginate(
                    RoleName=name
                )
                for profile in page.get("InstanceProfiles", [])
            ]
            for profile in profiles:
                iam.remove_role_from_instance_profile(
                    InstanceProfileName=profile, RoleName=name
                )
            iam.delete_role(RoleName=name)
        except ClientError as exc:
            if not _gone(exc, "NoSuchEntity"):
                raise


class AccessPoints:
    """EFS access points on the shared file system (the tenant's files lie below them)."""

    name = "AccessPoint"

    def find(self, settings: Settings, clients: Any) -> Iterator[Item]:
        """Every access point of settings.file_system_id, by its tags."""
        if not settings.file_system_id:
            return
        paginator = clients.efs.get_paginator("describe_access_points")
        for page in paginator.paginate(FileSystemId=settings.file_system_id):
            for ap in page.get("AccessPoints", []):
                item = self._item(ap, settings)
                if item is not None:
                    yield item

    def _item(self, ap: dict[str, Any], settings: Settings) -> Item | None:
        if ap.get("LifeCycleState") in GONE_AP_STATES:
            return None
        return tagged_item(
            self.name,
            str(ap["AccessPointId"]),
            tag_dict(ap.get("Tags")),
            settings.operator_name,
            arn=ap.get("AccessPointArn"),
            fileSystemId=ap.get("FileSystemId"),
            rootPath=(ap.get("RootDirectory") or {}).get("Path"),
        )

    def refresh(self, item: Item, settings: Settings, clients: Any) -> Item | None:
        """The access point with its current tags; None when gone or going."""
        try:
            found = clients.efs.describe_access_points(AccessPointId=item.id)["AccessPoints"]
        except ClientError as exc:
            if _gone(exc, "AccessPointNotFound"):
                return None
            raise
        return self._item(dict(found[0]), settings) if found else None

    def delete(self, item: Item, settings: Settings, clients: Any) -> None:
        """DeleteAccessPoint; the directory below it stays (the archiver decides)."""
        try:
            clients.efs.delete_access_point(AccessPointId=item.id)
        except ClientError as exc:
            if not _gone(exc, "AccessPointNotFound"):
                raise


class SecurityGroups:
    """EC2 security groups (a tag filter does the work server-side)."""

    name = "SecurityGroup"

    def find(self, settings: Settings, clients: Any) -> Iterator[Item]:
        """Every security group with our managed-by tag."""
        paginator = clients.ec2.get_paginator("describe_security_groups")
        pages = paginator.paginate(
            Filters=[{"Name": f"tag:{TAG_MANAGED_BY}", "Values": [settings.operator_name]}]
        )
        for page in pages:
            for group in page.get("SecurityGroups", []):
                item = self._item(group, settings)
                if item is not None:
                    yield item

    def _item(self, group: dict[str, Any], settings: Settings) -> Item | None:
        return tagged_item(
            self.name,
            str(group["GroupId"]),
            tag_dict(group.get("Tags")),
            settings.operator_name,
            name=group.get("GroupName"),
            vpcId=group.get("VpcId"),
        )

    def refresh(self, item: Item, settings: Settings, clients: Any) -> Item | None:
        """The group with its current tags; None when gone."""
        try:
            found = clients.ec2.describe_security_groups(GroupIds=[item.id])["SecurityGroups"]
        except ClientError as exc:
            if _gone(exc, "InvalidGroup.NotFound"):
                return None
            raise
        return self._item(dict(found[0]), settings) if found else None

    def delete(self, item: Item, settings: Settings, clients: Any) -> None:
        """DeleteSecurityGroup; DependencyViolation (ENIs still attached) propagates."""
        try:
            clients.ec2.delete_security_group(GroupId=item.id)
        except ClientError as exc:
            if not _gone(exc, "InvalidGroup.NotFound"):
                raise
