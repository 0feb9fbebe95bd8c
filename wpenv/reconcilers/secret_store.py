"""What the tenant's two Secrets Manager secrets share: finding, creating, restoring, deleting.

The database secret and the client secret differ in their value (and rotation) only; how
each is found again (recorded ARN, else deterministic name), restored when found scheduled
for deletion, re-tagged and deleted without a recovery window is one piece of code, so a
fix to any of it reaches both. Nothing here reads or logs a secret's value.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from botocore.exceptions import ClientError

from wpenv import aws
from wpenv.reconcilers.base import MISSING, Context, Observation, TransientError, tag_diff

log = logging.getLogger(__name__)

NOT_FOUND = "ResourceNotFoundException"
EXISTS = "ResourceExistsException"
INVALID_REQUEST = "InvalidRequestException"

STALE_TAGS = "secret {name} lacks tags {keys}"
SCHEDULED = "secret {name} is scheduled for deletion; the next create restores it"
DELETION_PENDING = "secret {name} is still being deleted; trying again shortly"


def describe(ctx: Context, secret_id: str) -> dict[str, Any] | None:
    """DescribeSecret by ARN or name, or None when there is no such secret."""
    try:
        return dict(ctx.clients.secretsmanager.describe_secret(SecretId=secret_id))
    except ClientError as exc:
        if aws.is_not_found(exc, NOT_FOUND):
            return None
        raise


class StoredSecret:
    """Base of a reconciler for one tenant secret; subclasses own its value and policy.

    Deletion is forced (no recovery window) so a rollback or a deprovision can re-create
    the same name at once; a secret found scheduled for deletion (an older rollback, a
    person) is restored instead of failing the create.
    """

    id_key: ClassVar[str]  # where status.resources records the ARN, e.g. "dbSecretArn"
    description: ClassVar[str]  # formatted with the environment's namespace and name

    def secret_name(self, ctx: Context) -> str:
        """The deterministic name (from ctx.names)."""
        raise NotImplementedError

    def find(self, ctx: Context) -> dict[str, Any] | None:
        """DescribeSecret of the recorded ARN, else of the deterministic name (may be deleted)."""
        name = self.secret_name(ctx)
        recorded = ctx.ids.get(self.id_key)
        if recorded:
            found = describe(ctx, str(recorded))
            if found is not None and found.get("Name") == name:
                return found
        return describe(ctx, name)

    def inspect(
        self, ctx: Context, arn: str, described: Mapping[str, Any]
    ) -> tuple[list[str], dict[str, Any]]:
        """What is wrong with the live secret's value (and settings), and facts to report.

        Never a secret in either: problems and facts reach the status and Events.
        """
        raise NotImplementedError

    def observe(self, ctx: Context) -> Observation:
        """Stale when `inspect` finds problems or our tags are missing."""
        described = self.find(ctx)
        if described is None:
            return MISSING
        name = self.secret_name(ctx)
        if described.get("DeletedDate"):
            detail = SCHEDULED.format(name=name)
            return Observation(exists=False, up_to_date=False, ready=False, detail=detail)
        arn = str(described["ARN"])
        problems, facts = self.inspect(ctx, arn, described)
        problems += self.tag_problems(ctx, described)
        return Observation(
            exists=True,
            up_to_date=not problems,
            ids={self.id_key: arn},
            detail="; ".join(problems),
            facts=facts,
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
        value: Callable[[], str],
        adopt: Callable[[Mapping[str, Any]], None],
    ) -> str | None:
        """Create the secret holding `value()`, or hand one of our name to `adopt`.

        Returns the new secret's ARN, or None when an existing one was adopted. `value` is
        called only when creating, after the lookup (it may do I/O; it holds the secret).
        """
        described = self.find(ctx)
        if described is not None:
            adopt(described)
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
            if code == EXISTS:  # created meanwhile (or moto's answer for a deleted name)
                again = self.find(ctx)
                if again is not None:
                    adopt(again)
                    return None
            if code in (EXISTS, INVALID_REQUEST):
                # AWS finishes a forced delete asynchronously: the name frees up shortly.
                raise self._deletion_pending(ctx) from exc
            raise
        arn = str(created["ARN"])
        ctx.remember({self.id_key: arn})
        log.info("created secret %s", name)
        return arn

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
        ctx.remember({self.id_key: arn})
        return arn

    def repair_tags(self, ctx: Context, arn: str) -> dict[str, Any]:
        """Put back our tags the secret lacks; returns its fresh description."""
        sm = ctx.clients.secretsmanager
        described = dict(sm.describe_secret(SecretId=arn))
        tags = tag_diff(ctx.tags, described)
        if tags:
            sm.tag_resource(SecretId=arn, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
        return described

    def delete(self, ctx: Context) -> None:
        """Delete at once, without a recovery window, so the name can be re-created.

        Both the recorded ARN and the name: after a secret was deleted by hand and made
        again (drift repair), the record may name the old one while the new one lives.
        """
        name = self.secret_name(ctx)
        for secret_id in dict.fromkeys(i for i in (ctx.ids.get(self.id_key), name) if i):
            try:
                ctx.clients.secretsmanager.delete_secret(
                    SecretId=str(secret_id), ForceDeleteWithoutRecovery=True
                )
            except ClientError as exc:
                if not aws.is_not_found(exc, NOT_FOUND):
                    raise
                continue  # already gone
            log.info("deleted secret %s (%s)", name, secret_id)

    def _deletion_pending(self, ctx: Context) -> TransientError:
        return TransientError(
            "SecretDeletionPending", DELETION_PENDING.format(name=self.secret_name(ctx))
        )
