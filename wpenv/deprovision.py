"""Deprovisioning (HLD 3.4): the engine's one teardown, with the finalizer's archive hooks.

Every kind is removed in the creation order reversed (wpenv.reconcilers.registry), one
Event a kind ("Step N/M", M the number of kinds in the registry). The kinds that hold
data run their archive hook first (wpenv.archive.hooks.Deprovisioning), and nothing is
deleted when it raises:

- the service is stopped before the data is read, so the dump and the tar are quiescent;
- the database is dumped to S3, the dump restored into a scratch database and compared
  table by table, and only then dropped with its user;
- the tenant's directory is streamed as tar.gz to S3, read back and compared, then removed,
  before the access point goes;
- the users and groups go to users.json before the user pool goes.

Every step is idempotent, so an attempt cut short (a crash, an error) is simply run again
from the top: deletes of what is already gone are reads, and data is archived again if it
still exists. The archive goes to `<prefix>/<namespace>/<name>/<timestamp>/` (see
wpenv.plan); its manifest.json is rewritten after each artefact, so it is also the durable
record of what an earlier attempt already archived and verified.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from wpenv.archive.hooks import Deprovisioning, Note
from wpenv.archive.manifest import artefact_key
from wpenv.archive.s3stream import s3_uri
from wpenv.crashpoints import REMOVED, crashpoint
from wpenv.engine import TeardownError, tear_down
from wpenv.reconcilers import registry
from wpenv.reconcilers.base import Context, Observation, Resource

STEPS = len(registry.KINDS)

Report = Callable[[int, str], None]


@dataclass
class Archive:
    """Where this deprovisioning archives, and where each artefact ended up."""

    bucket: str
    prefix: str
    locations: dict[str, str] = field(default_factory=dict)

    def uri(self, name: str = "") -> str:
        """`s3://bucket/prefix/name` (the prefix itself with a trailing slash for "")."""
        return s3_uri(self.bucket, artefact_key(self.prefix, name) if name else f"{self.prefix}/")


@dataclass
class Deprovisioner:
    """One attempt at removing everything of one environment."""

    ctx: Context
    resources: Sequence[Resource]
    archive: Archive
    report: Report

    def run(self) -> None:
        """Archive and remove in one teardown; raises (and is run again later) when stuck."""
        done = 0

        def told(message: str) -> None:
            self.report(done + 1, message)

        def removed(resource: Resource, observed: Observation, note: Note | None) -> None:
            nonlocal done
            done += 1
            state = "removed" if observed.exists else "already gone"
            self.report(done, f"{resource.kind} {state}")
            crashpoint(REMOVED, resource.kind)

        hooks = Deprovisioning(self.archive.bucket, self.archive.prefix, report=told)
        hooks.start(self.ctx)
        try:
            tear_down(self.ctx, self.resources, hooks.hooks(), removed)
        except TeardownError as exc:
            raise exc.cause from exc  # the finalizer reports what failed, as it was raised
        finally:
            self.archive.locations.update(hooks.locations)
        hooks.write(self.ctx)
        self.archive.locations.update(hooks.locations)
