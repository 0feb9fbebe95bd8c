"""What the tenant's two Secrets Manager secrets share: finding, creating, restoring, deleting.

The database secret and the client secret differ in their value (and rotation) only; how
each is found again (recorded ARN, else deterministic name), restored when found scheduled
for deletion, re-tagged, deleted and listed for the orphan scan is one piece of code, so a
fix to any of it reaches both. Nothing here reads or logs a secret's value.

Deletion is always forced (ForceDeleteWithoutRecovery), by the reconciler and by the orphan
cleanup alike (both call `remove`): a rollback or a re-provision must be able to create the
same name again at once, which a secret in its recovery window prevents; and a recovery
window would keep nothing of worth, since the value only unlocks the database user or the
app client it was made for, and those go with the environment. A secret found scheduled for
deletion (by a person, or an older operator) is restored by create instead.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

from botocore.exceptions import ClientError

from wpenv import aws, mysql, reasons
from wpenv.errors import TransientError
from wpenv.plan import TAG_MANAGED_BY, Names, names_for, tag_dict, tag_diff, tag_list
from wpenv.reconcilers.base import Context, Found, Observation, Resource
from wpenv.settings import Settings

log = logging.getLogger(__name__)

NOT_FOUND = "ResourceNotFoundException"
EXISTS = "ResourceExistsException"
INVALID_REQUEST = "InvalidRequestException"
# Stands for the tenant id in a name pattern; tenant ids are lower-case DNS labels.
TENANT_MARK = "TENANT"

STALE_TAGS = "secret {name} lacks tags {keys}"
SCHEDULED = "secret {name} is scheduled for deletion; the next create restores it"
DELETION_PENDING = "secret {name} is still being deleted; trying again shortly"
# The shared cache's listings (wpenv.reconcilers.observations): every tenant secret's
# description (ListSecrets, deleted ones included) and current value (BatchGetSecretValue,
# which takes at most 20 secrets a call: "BatchGetSecretValue", Secrets Manager API).
LISTED = "secretsmanager:ListSecrets"
VALUES = "secretsmanager:BatchGetSecretValue"
VALUES_PER_CALL = 20


def tenant_prefix() -> str:
    """The name prefix every tenant secret shares (`wpenv/`), pure."""
    return name_pattern(lambda names: names.db_secret)[0].rpartition("/")[0] + "/"


def listed_secrets(clients: Any) -> dict[str, dict[str, Any]]:
    """ARN -> ListSecrets entry of every tenant secret, scheduled ones included.

    The entry carries what DescribeSecret answers and observe compares: name, tags,
    DeletedDate and the rotation settings.
    """
    pages = clients.secretsmanager.get_paginator("list_secrets").paginate(
        Filters=[{"Key": "name", "Values": [tenant_prefix()]}], IncludePlannedDeletion=True
    )
    return {str(s["ARN"]): dict(s) for page in pages for s in page.get("SecretList", [])}


def secret_values(clients: Any, arns: list[str]) -> dict[str, str]:
    """ARN -> SecretString of the secrets, 20 per BatchGetSecretValue; what one cannot
    read (its error in `Errors`) is left out, so its owner reads it on its own."""
    values: dict[str, str] = {}
    for start in range(0, len(arns), VALUES_PER_CALL):
        batch = arns[start : start + VALUES_PER_CALL]
        answer = clients.secretsmanager.batch_get_secret_value(SecretIdList=batch)
        for item in answer.get("SecretValues") or []:
            if item.get("SecretString") is not None:
                values[str(item["ARN"])] = str(item["SecretString"])
    return values


def tenant_values(ctx: Context) -> dict[str, str]:
    """The current value of every tenant secret not scheduled for deletion (the secrets
    from the cache's listing of them)."""
    listed = ctx.observations.snapshot(LISTED, tenant_prefix(),
                                       lambda: listed_secrets(ctx.clients)).items
    live = [arn for arn, s in listed.items() if not s.get("DeletedDate")]
    return secret_values(ctx.clients, sorted(live))


def secret_string(ctx: Context, kind: str, arn: str) -> str | None:
    """A tenant secret's current SecretString, through the shared cache (holds a secret).

    `kind` is the one whose writes change the value. Raises what GetSecretValue raises.
    """
    def direct() -> str | None:
        value = ctx.clients.secretsmanager.get_secret_value(SecretId=arn).get("SecretString")
        return None if value is None else str(value)

    found: str | None = ctx.observations.lookup(
        ctx.owner(kind), VALUES, tenant_prefix(), arn,
        bulk=lambda: tenant_values(ctx), direct=direct,
    )
    return found


def credentials(ctx: Context, kind: str, arn: str) -> dict[str, Any]:
    """The JSON object in a tenant secret's value, through the shared cache (as
    `wpenv.mysql.read_credentials` reads it directly): holds a password, never log it."""
    parsed = json.loads(secret_string(ctx, kind, arn) or "{}")
    if not isinstance(parsed, dict):
        raise ValueError(mysql.UNREADABLE.format(name=arn))
    return parsed


def describe(clients: Any, secret_id: str) -> dict[str, Any] | None:
    """DescribeSecret by ARN or name, or None when there is no such secret."""
    try:
        return dict(clients.secretsmanager.describe_secret(SecretId=secret_id))
    except ClientError as exc:
        if aws.error_code(exc) == NOT_FOUND:
            return None
        raise


def name_pattern(name_of: Callable[[Names], str]) -> tuple[str, re.Pattern[str]]:
    """(the fixed prefix, a pattern of every name) of a secret named by `name_of` (pure)."""
    prefix, _, suffix = name_of(names_for("", "", TENANT_MARK)).partition(TENANT_MARK)
    return prefix, re.compile(re.escape(prefix) + r"[^/]+" + re.escape(suffix))


class StoredSecret(Resource, gone={NOT_FOUND}, retainable=True):
    """Base of a kind for one tenant secret; subclasses own its value and policy."""

    description: ClassVar[str]  # formatted with the environment's namespace and name
    named: ClassVar[str]  # the attribute of plan.Names that holds the secret's name

    @classmethod
    def name_of(cls, names: Names) -> str:
        """The deterministic name among an environment's names: found again by it when no
        ARN is recorded."""
        return str(getattr(names, cls.named))

    def secret_name(self, ctx: Context) -> str:
        """This environment's secret name."""
        return self.name_of(ctx.names)

    def find_by_id(self, ctx: Context, recorded: str) -> dict[str, Any] | None:
        """DescribeSecret of the recorded ARN, if it still bears our name (may be deleted)."""
        found: dict[str, Any] = self.cached(
            ctx, LISTED, tenant_prefix(), recorded,
            bulk=lambda: listed_secrets(ctx.clients),
            direct=lambda: dict(ctx.clients.secretsmanager.describe_secret(SecretId=recorded)),
        )
        return found if found.get("Name") == self.secret_name(ctx) else None

    def find_by_name(self, ctx: Context) -> dict[str, Any] | None:
        """DescribeSecret of the deterministic name (may be scheduled for deletion)."""
        return describe(ctx.clients, self.secret_name(ctx))

    def value_problems(self, ctx: Context, arn: str, described: Mapping[str, Any]) -> list[str]:
        """What is wrong with the live secret's value (and settings); never a secret in it."""
        raise NotImplementedError

    def inspect(self, ctx: Context, found: dict[str, Any]) -> Observation:
        """Stale when `value_problems` finds any or our tags are missing; absent while deleted."""
        name = self.secret_name(ctx)
        if found.get("DeletedDate"):
            detail = SCHEDULED.format(name=name)
            return Observation(exists=False, up_to_date=False, ready=False, detail=detail,
                               found=found)
        arn = str(found["ARN"])
        problems = self.value_problems(ctx, arn, found) + self.tag_problems(ctx, found)
        return Observation(
            exists=True,
            up_to_date=not problems,
            ids={self.ids[0]: arn},
            detail="; ".join(problems),
            found=found,
        )

    def tag_problems(self, ctx: Context, described: Mapping[str, Any]) -> list[str]:
        """The problem to report for our tags the secret lacks or holds another value of."""
        tags = tag_diff(ctx.tags, described)
        if not tags:
            return []
        return [STALE_TAGS.format(name=self.secret_name(ctx), keys=sorted(tags))]

    def create_or_adopt(
        self,
        ctx: Context,
        observed: Observation,
        value: Callable[[], str],
        adopt: Callable[[Mapping[str, Any]], None],
    ) -> Mapping[str, Any] | None:
        """Create the secret holding `value()`, or hand the one observe found to `adopt`.

        Returns CreateSecret's answer (ARN, VersionId), or None when an existing one was
        adopted. `value` is
        called only when creating (it may do I/O; it holds the secret). Names are unique, so
        a secret made meanwhile shows as ResourceExistsException and is adopted then.
        """
        if observed.found is not None:
            adopt(observed.found)
            return None
        name = self.secret_name(ctx)
        try:
            created = ctx.clients.secretsmanager.create_secret(
                Name=name,
                Description=self.description.format(namespace=ctx.namespace, name=ctx.name),
                SecretString=value(),
                Tags=ctx.tag_list,
            )
        except ClientError as exc:
            code = aws.error_code(exc)
            if code == EXISTS:  # created meanwhile
                again = self.find_by_name(ctx)
                if again is not None:
                    adopt(again)
                    return None
            if code in (EXISTS, INVALID_REQUEST):
                # The name is reserved: scheduled for deletion since observe looked (the next
                # pass finds and restores it), or a forced delete AWS has not finished yet
                # (it frees the name shortly).
                raise self._deletion_pending(ctx) from exc
            raise
        ctx.remember({self.ids[0]: str(created["ARN"])})
        log.info("created secret %s", name)
        return dict(created)

    def take_over(self, ctx: Context, described: Mapping[str, Any]) -> str:
        """Restore a secret of our name if it is scheduled for deletion, and record its ARN."""
        arn = str(described["ARN"])
        if described.get("DeletedDate"):
            try:
                ctx.clients.secretsmanager.restore_secret(SecretId=arn)
            except ClientError as exc:
                if aws.error_code(exc) == INVALID_REQUEST:  # a forced delete in progress
                    raise self._deletion_pending(ctx) from exc
                raise
            log.info("restored secret %s, which was scheduled for deletion",
                     self.secret_name(ctx))
        ctx.remember({self.ids[0]: arn})
        return arn

    def repair_tags(self, ctx: Context, arn: str, described: Mapping[str, Any]) -> None:
        """Put back our tags that the described secret lacks."""
        tags = tag_diff(ctx.tags, described)
        if tags:
            ctx.clients.secretsmanager.tag_resource(SecretId=arn, Tags=tag_list(tags))

    def remove(self, clients: Any, settings: Settings, found: Mapping[str, Any]) -> None:
        """DeleteSecret of the ARN found, forced (see the module docstring for why).

        "Already scheduled for deletion" (InvalidRequestException) counts as gone for this
        call only; ResourceNotFoundException is the kind's `gone`.
        """
        arn = str(found["ARN"])
        try:
            clients.secretsmanager.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
        except ClientError as exc:
            if aws.error_code(exc) != INVALID_REQUEST:
                raise
            log.info("secret %s is already being deleted", found.get("Name") or arn)
            return
        log.info("deleted secret %s", found.get("Name") or arn)

    def tag(self, ctx: Context, recorded: str, tags: Mapping[str, str]) -> None:
        """TagResource on the recorded secret."""
        ctx.clients.secretsmanager.tag_resource(SecretId=recorded, Tags=tag_list(tags))

    def managed(self, clients: Any, settings: Settings) -> Iterator[Found]:
        """This kind's secrets with our managed-by tag, not scheduled for deletion.

        The name prefix and the tag key filter server-side (prefix matches); the name
        pattern keeps out the other kind's secrets, so no secret is listed twice.
        """
        prefix, pattern = name_pattern(self.name_of)
        pages = clients.secretsmanager.get_paginator("list_secrets").paginate(
            Filters=[
                {"Key": "name", "Values": [prefix]},
                {"Key": "tag-key", "Values": [TAG_MANAGED_BY]},
            ]
        )
        for page in pages:
            for secret in page.get("SecretList", []):
                found = self._found(dict(secret))
                if found is not None and pattern.fullmatch(str(secret.get("Name"))) and (
                    found.tags.get(TAG_MANAGED_BY) == settings.operator_name
                ):
                    yield found

    @staticmethod
    def _found(secret: dict[str, Any]) -> Found | None:
        if secret.get("DeletedDate"):
            return None
        return Found(str(secret["ARN"]), secret, tag_dict(secret.get("Tags")),
                     {"name": secret.get("Name")})

    def refresh(self, clients: Any, settings: Settings, item: Found) -> Found | None:
        """The secret with its current tags; None when gone or scheduled for deletion."""
        described = describe(clients, item.id)
        return None if described is None else self._found(described)

    def _deletion_pending(self, ctx: Context) -> TransientError:
        return TransientError(
            reasons.SECRET_DELETION_PENDING, DELETION_PENDING.format(name=self.secret_name(ctx))
        )
