"""What ECS and the ALB do on their own in AWS, applied to moto's in-memory backends.

moto stores ECS services but nothing ever runs: a new service stays IN_PROGRESS with no
running tasks forever, ``update_service`` sets ``runningCount`` to the new desired count at
once, keeps the old deployment (and the task definition the caller typed, e.g. ``fam:2``
instead of its ARN), and no target is ever registered in a service's target group. The
operator waits for exactly those things, so this module supplies them:

- after ``delay`` seconds since a service's last change its tasks "start": running count
  reaches the desired count, the PRIMARY deployment becomes COMPLETED, older ones go away;
- ``update_service`` with a new task definition (or ``forceNewDeployment``) starts a new
  PRIMARY deployment IN_PROGRESS right away, as ECS does;
- each running task is an ip target (a fake address in the service's subnets) in every
  target group of the service; moto reports registered ip targets as healthy;
- tasks that ECS would not start do not start (task_start.py: an image ending in
  ``:broken``, a log group that does not exist, a secret the execution role may not
  read): the service says why in an event, and the deployment circuit breaker rolls the
  service back to the task definition of its last COMPLETED deployment;
- a deleted service is DRAINING for ``drain`` seconds (WPENV_ECS_DRAIN_SECONDS) while its
  tasks stop, then INACTIVE (fidelity/service_drain.py refuses its name meanwhile);
- each running task of an awsvpc service has a network interface in moto's EC2 backend,
  in its subnet with the service's security groups; it is deleted ``eni_release`` seconds
  (WPENV_ENI_RELEASE_SECONDS) after the task stopped, and until then the groups cannot be
  deleted (fidelity/security_groups.py).

It runs inside the moto server process (see motoserver.py) so that the operator only ever
talks plain HTTP to moto, exactly as it talks to AWS. Keeping state on moto's objects, and
the bookkeeping in :class:`Simulator`, makes each rule a small function testable with
``mock_aws``.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import logging
import os
import random
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from moto.backends import get_backend
from moto.core.utils import utcnow
from moto.ecs.models import EC2ContainerServiceBackend

from tests.platform.fidelity import elb_quotas
from tests.platform.task_start import BROKEN_SUFFIX, start_failure

if TYPE_CHECKING:
    from tests.platform.wordpress import DataPlane

__all__ = [
    "BROKEN_SUFFIX",
    "DEFAULT_DELAY_SECONDS",
    "DEFAULT_DRAIN_SECONDS",
    "DEFAULT_ENI_RELEASE_SECONDS",
    "DELAY_ENV",
    "DRAIN_ENV",
    "ENI_RELEASE_ENV",
    "Simulator",
    "TaskEni",
    "Tracked",
    "add_event",
    "complete_rollout",
    "delay_from_env",
    "fail_rollout",
    "first_image",
    "resolve_task_definition",
    "seconds_from_env",
    "start_deployment",
    "task_ips",
    "task_placements",
]

log = logging.getLogger("wpenv.simulator")

DELAY_ENV = "WPENV_SIM_DELAY_SECONDS"
DEFAULT_DELAY_SECONDS = 2.0
# How long a deleted service drains, and how long a stopped task's interface lingers.
DRAIN_ENV = "WPENV_ECS_DRAIN_SECONDS"
DEFAULT_DRAIN_SECONDS = 2.0
ENI_RELEASE_ENV = "WPENV_ENI_RELEASE_SECONDS"
DEFAULT_ENI_RELEASE_SECONDS = 2.0
ACTIVE = "ACTIVE"
DRAINING = "DRAINING"
INACTIVE = "INACTIVE"
DEFAULT_PERIOD_SECONDS = 0.5
# How often the simulator steps; a benchmark where nothing may wait for the platform
# (bench/overhead.py) makes it step faster than the operator polls.
PERIOD_ENV = "WPENV_SIM_PERIOD_SECONDS"
# Where tasks of a service without awsvpc subnets get their fake addresses.
FALLBACK_CIDR = "10.255.0.0/16"
FIRST_TASK_OFFSET = 16
MAX_EVENTS = 100

Service = Any  # moto.ecs.models.Service; moto is untyped for mypy here.
Backend = Any  # a moto region backend (ECS, ELBv2 or EC2).
Deployment = dict[str, Any]


def delay_from_env(default: float = DEFAULT_DELAY_SECONDS) -> float:
    """The simulated task start-up time, from WPENV_SIM_DELAY_SECONDS (tests shorten it)."""
    return seconds_from_env(DELAY_ENV, default)


def seconds_from_env(name: str, default: float) -> float:
    """A number of seconds from the environment variable ``name``; ``default`` when unset."""
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


# --- small rules on moto objects -----------------------------------------------------------


def resolve_task_definition(ecs: Backend, ref: str | None) -> str | None:
    """The full ARN for ``ref`` (``fam``, ``fam:3`` or an ARN); ``ref`` itself if unknown.

    ECS always reports ARNs; moto echoes whatever ``update_service`` was given.
    """
    if not ref:
        return None
    try:
        arn: str = ecs.describe_task_definition(ref).arn
    except Exception:  # moto raises its own exception types; unknown means "leave it"
        return ref
    return arn


def first_image(ecs: Backend, task_definition: str | None) -> str | None:
    """Image of the first container of ``task_definition``, None if it cannot be found."""
    if not task_definition:
        return None
    try:
        containers = ecs.describe_task_definition(task_definition).container_definitions
    except Exception:  # deleted or never registered
        return None
    if not containers:
        return None
    image = containers[0].get("image")
    return str(image) if image is not None else None


def _deployment_id() -> str:
    """An id shaped like ECS's (``ecs-svc/`` and 19 digits)."""
    return f"ecs-svc/{random.randrange(10**18, 10**19)}"


def add_event(service: Service, message: str) -> None:
    """Prepend a service event (ECS lists the newest first) so tests and humans see why."""
    event = {
        "id": f"{random.getrandbits(128):032x}",
        "createdAt": utcnow(),
        "message": f"(service {service.name}) {message}",
    }
    service.events.insert(0, event)
    del service.events[MAX_EVENTS:]


def start_deployment(service: Service, task_definition: str, reason: str) -> Deployment:
    """Make a new PRIMARY deployment IN_PROGRESS for ``task_definition``; older ones turn ACTIVE.

    The older deployments keep their tasks (and counts) until the new one completes.
    """
    now = utcnow()
    template: Deployment = dict(service.deployments[0]) if service.deployments else {}
    for old in service.deployments:
        old["status"] = "ACTIVE"
        old["updatedAt"] = now
    deployment_id = _deployment_id()
    deployment: Deployment = {
        **template,
        "id": deployment_id,
        "status": "PRIMARY",
        "taskDefinition": task_definition,
        "desiredCount": service.desired_count,
        "pendingCount": service.desired_count,
        "runningCount": 0,
        "failedTasks": 0,
        "createdAt": now,
        "updatedAt": now,
        "launchType": service.launch_type,
        "rolloutState": "IN_PROGRESS",
        "rolloutStateReason": f"ECS deployment {deployment_id} in progress.",
    }
    if service.network_configuration:
        deployment["networkConfiguration"] = service.network_configuration
    service.deployments.insert(0, deployment)
    service.task_definition = task_definition
    add_event(service, f"has started a deployment ({deployment_id}): {reason}.")
    return deployment


def complete_rollout(service: Service) -> None:
    """The tasks of the PRIMARY deployment are up: it is COMPLETED and the only deployment."""
    service.running_count = service.desired_count
    service.pending_count = 0
    if not service.deployments:  # deployment controller other than ECS
        return
    primary = service.deployments[0]
    was_in_progress = primary.get("rolloutState") == "IN_PROGRESS"
    primary.update(
        status="PRIMARY",
        desiredCount=service.desired_count,
        runningCount=service.desired_count,
        pendingCount=0,
        failedTasks=0,
        rolloutState="COMPLETED",
        rolloutStateReason=f"ECS deployment {primary['id']} completed.",
        updatedAt=utcnow(),
    )
    del service.deployments[1:]
    if was_in_progress:
        add_event(service, f"(deployment {primary['id']}) deployment completed.")
    add_event(service, "has reached a steady state.")


def fail_rollout(service: Service, running: int, reason: str = "") -> Deployment:
    """The PRIMARY deployment's tasks never start: the circuit breaker marks it FAILED.

    The service keeps whatever still runs (``running`` old tasks); the caller decides about
    a rollback, which is just a new deployment of the previous task definition. ``reason``
    is why the tasks stopped (ECS's stopped reason), which a service event tells.
    """
    primary: Deployment = service.deployments[0]
    if reason:
        add_event(service, f"was unable to place a task. Reason: {reason}.")
    primary.update(
        runningCount=0,
        pendingCount=0,
        failedTasks=max(service.desired_count, 1),
        rolloutState="FAILED",
        rolloutStateReason="ECS deployment circuit breaker: task failed to start.",
        updatedAt=utcnow(),
    )
    service.running_count = running
    service.pending_count = 0
    add_event(service, f"(deployment {primary['id']}) deployment failed: tasks failed to start.")
    return primary


def task_ips(service: Service, count: int, ec2: Backend | None) -> list[str]:
    """Deterministic private addresses for tasks 0..count-1, spread over the service's subnets.

    Task i lives in subnet i mod n (as ECS spreads over AZs) at an offset derived from the
    service's ARN. The subnet's first FIRST_TASK_OFFSET addresses (AWS reserves 4; moto gives
    EFS mount targets .4 and up) and its last one (reserved) are never used.
    """
    return [ip for _subnet, ip in task_placements(service, count, ec2)]


def task_placements(service: Service, count: int, ec2: Backend | None) -> list[tuple[str, str]]:
    """(subnet id, address) of tasks 0..count-1; the subnet is "" for the fallback range."""
    subnets = tuple(_subnets(service, ec2)) or (("", FALLBACK_CIDR),)
    seed = zlib.crc32(f"{service.cluster_arn}/{service.name}".encode())
    return list(_placements(seed, subnets, count))


@functools.lru_cache(maxsize=4096)
def _placements(seed: int, subnets: tuple[tuple[str, str], ...],
                count: int) -> tuple[tuple[str, str], ...]:
    """The placements of :func:`task_placements`, cached: every pass asks again for every
    service, and parsing the CIDR blocks each time made a pass at 1,000 services slow."""
    placements = []
    for index in range(count):
        subnet, cidr = subnets[index % len(subnets)]
        network = ipaddress.ip_network(cidr, strict=False)
        usable = max(network.num_addresses - FIRST_TASK_OFFSET - 1, 1)
        offset = FIRST_TASK_OFFSET + (seed + index // len(subnets)) % usable
        placements.append((subnet, str(network.network_address + offset)))
    return tuple(placements)


def _subnets(service: Service, ec2: Backend | None) -> list[tuple[str, str]]:
    """(id, CIDR block) of the service's awsvpc subnets that moto's EC2 backend knows."""
    config = (service.network_configuration or {}).get("awsvpcConfiguration") or {}
    found: list[tuple[str, str]] = []
    if ec2 is None:
        return found
    for subnet_id in config.get("subnets") or []:
        try:
            found.append((str(subnet_id), str(ec2.get_subnet(subnet_id).cidr_block)))
        except Exception:  # unknown subnet (or no EC2 backend): fall back below
            continue
    return found


def _security_groups(service: Service, ec2: Backend) -> tuple[str, ...]:
    """The service's awsvpc security groups that still exist (moto would invent the others)."""
    config = (service.network_configuration or {}).get("awsvpcConfiguration") or {}
    wanted = [str(g) for g in config.get("securityGroups") or []]
    return tuple(g for g in wanted if ec2.get_security_group_from_id(g) is not None)


# --- the loop ------------------------------------------------------------------------------


@dataclass
class Tracked:
    """What the simulator remembers about one service between passes."""

    service: Service  # the moto object; a new object under the same name is a new service
    changed_at: float  # clock time of the last change; tasks start ``delay`` after it
    running: int  # the running count the simulator stands for (moto overwrites it)
    desired: int  # desired count when last seen, to tell a scaling from a no-op update
    stable_task_definition: str | None  # of the last COMPLETED deployment: rollback target
    settled: bool  # nothing left to do until the next change
    targets: dict[str, set[str]] = field(default_factory=dict)  # target group ARN -> ips
    deleted_at: float | None = None  # clock time of DeleteService; it drains from then


ServiceKey = tuple[str, str, str, str]  # account, region, cluster, service name


@dataclass
class TaskEni:
    """The network interface of one task, in moto's EC2 backend, and when its task stopped."""

    service: ServiceKey
    ip: str
    groups: tuple[str, ...]  # the security groups it carries
    stopped_at: float | None = None  # the interface goes ``eni_release`` seconds later


class Simulator:
    """Advances moto's ECS services and their target groups; one pass per :meth:`step`.

    :meth:`install_hooks` wraps moto's ``create_service``/``update_service`` so the effects
    ECS shows in the very response (a new deployment, an unchanged running count) are there
    at once rather than up to one period later. Hooks and passes share one lock because the
    moto server handles requests on other threads.
    """

    def __init__(
        self,
        delay: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        *,
        drain: float | None = None,
        eni_release: float | None = None,
        data_plane: DataPlane | None = None,
    ) -> None:
        self.delay = delay_from_env() if delay is None else delay
        self.drain = seconds_from_env(DRAIN_ENV, DEFAULT_DRAIN_SECONDS) if drain is None else drain
        self.eni_release = (seconds_from_env(ENI_RELEASE_ENV, DEFAULT_ENI_RELEASE_SECONDS)
                            if eni_release is None else eni_release)
        self.data_plane = data_plane  # real WordPress tasks (wordpress.py), when on
        self.clock = clock
        self.lock = threading.RLock()
        self.tracked: dict[ServiceKey, Tracked] = {}
        self.enis: dict[str, TaskEni] = {}  # ENI id -> the task it belongs to
        # The same ENI ids by service: a pass looks at each service's own, not at all of
        # them for each service (2,000 interfaces x 1,000 services was most of a pass).
        self.enis_of: dict[ServiceKey, set[str]] = {}
        self.last_pass: float | None = None  # clock time of the last finished pass
        self._originals: dict[str, Callable[..., Any]] = {}

    # -- hooks into moto --------------------------------------------------------------------

    def install_hooks(self) -> None:
        """Wrap moto's ECS create/update/delete_service (class-wide, in this process)."""
        if self._originals:
            return
        cls = EC2ContainerServiceBackend
        original_create = cls.create_service
        original_update = cls.update_service
        original_delete = cls.delete_service
        self._originals = {"create_service": original_create, "update_service": original_update,
                           "delete_service": original_delete}
        sim = self

        def delete_service(backend: Backend, cluster_name: str, service_name: str,
                           force: bool) -> Service:
            with sim.lock:
                before = backend._get_service(cluster_name, service_name).status
                service = original_delete(backend, cluster_name, service_name, force)
                sim.on_delete(backend, service, before)
                return service

        def create_service(backend: Backend, *args: Any, **kwargs: Any) -> Service:
            with sim.lock:
                service = original_create(backend, *args, **kwargs)
                sim.observe(backend, service)
                return service

        def update_service(backend: Backend, service_properties: dict[str, Any]) -> Service:
            props = dict(service_properties)  # moto pops from the one it is given
            with sim.lock:
                before: Deployment | None = None
                with contextlib.suppress(Exception):  # let moto raise its own error below
                    cluster = props.get("cluster", "default")
                    service = backend._get_service(cluster, props["service"])
                    sim.observe(backend, service)
                    before = dict(service.deployments[0]) if service.deployments else None
                service = original_update(backend, service_properties)
                if before is not None and service.deployments:
                    # moto "forces" a deployment by renaming the current one in place.
                    service.deployments[0].update(
                        {k: before[k] for k in ("id", "createdAt", "updatedAt") if k in before}
                    )
                sim.on_update(
                    backend,
                    service,
                    task_definition_given=props.get("task_definition") is not None,
                    force=bool(props.get("force_new_deployment")),
                )
                return service

        setattr(cls, "create_service", create_service)  # noqa: B010 - mypy forbids plain assignment
        setattr(cls, "update_service", update_service)  # noqa: B010
        setattr(cls, "delete_service", delete_service)  # noqa: B010

    def uninstall_hooks(self) -> None:
        """Put moto's methods back (unit tests share the process with other tests)."""
        for name, original in self._originals.items():
            setattr(EC2ContainerServiceBackend, name, original)
        self._originals = {}

    @contextlib.contextmanager
    def hooked(self) -> Iterator[Simulator]:
        """``with Simulator(...).hooked() as sim:`` installs the hooks for the block."""
        self.install_hooks()
        try:
            yield self
        finally:
            self.uninstall_hooks()

    # -- bookkeeping ------------------------------------------------------------------------

    @staticmethod
    def key(ecs: Backend, service: Service) -> ServiceKey:
        """Identify a service across passes."""
        return (ecs.account_id, ecs.region_name, service.cluster_name, service.name)

    def observe(self, ecs: Backend, service: Service) -> Tracked:
        """The tracking record for ``service``, created on first sight (then: "just changed")."""
        key = self.key(ecs, service)
        tracked = self.tracked.get(key)
        if tracked is not None and tracked.service is service:
            return tracked
        previous_targets = tracked.targets if tracked is not None else {}
        primary = service.deployments[0] if service.deployments else None
        completed = primary is not None and primary.get("rolloutState") == "COMPLETED"
        tracked = Tracked(
            service=service,
            changed_at=self.clock(),
            running=service.running_count,
            desired=service.desired_count,
            stable_task_definition=primary["taskDefinition"] if completed and primary else None,
            settled=completed and service.running_count == service.desired_count,
            targets=previous_targets,  # a re-created service inherits what to clean up
        )
        self.tracked[key] = tracked
        return tracked

    def on_update(
        self, ecs: Backend, service: Service, *, task_definition_given: bool, force: bool
    ) -> None:
        """Undo moto's shortcuts after ``update_service`` and do what ECS does instead."""
        tracked = self.observe(ecs, service)
        # moto jumps the running count to the new desired count; ECS starts tasks first.
        service.running_count = tracked.running
        primary = service.deployments[0] if service.deployments else None
        current = primary["taskDefinition"] if primary else None
        wanted = resolve_task_definition(ecs, service.task_definition) or current
        service.task_definition = wanted
        changed = service.desired_count != tracked.desired
        tracked.desired = service.desired_count
        if primary is not None and wanted is not None and (
            (task_definition_given and wanted != current) or force
        ):
            why = "forced new deployment" if wanted == current else f"task definition {wanted}"
            start_deployment(service, wanted, why)
            changed = True
        if service.deployments:
            primary = service.deployments[0]
            primary["desiredCount"] = service.desired_count
            primary["pendingCount"] = max(service.desired_count - primary["runningCount"], 0)
            service.pending_count = primary["pendingCount"]
        else:
            service.pending_count = max(service.desired_count - tracked.running, 0)
        if changed:
            tracked.changed_at = self.clock()
            tracked.settled = False

    def on_delete(self, ecs: Backend, service: Service, before: str) -> None:
        """moto marks a deleted service INACTIVE at once; ECS lets its tasks drain first."""
        tracked = self.observe(ecs, service)
        if before != ACTIVE:  # deleted again: it keeps draining (or stays INACTIVE)
            service.status = before
            return
        tracked.deleted_at = self.clock()
        if self.drain > 0:
            service.status = DRAINING

    # -- one pass ---------------------------------------------------------------------------

    def step(self) -> None:
        """One pass over every ECS service moto holds, in every account and region."""
        with self.lock:
            seen: set[ServiceKey] = set()
            for ecs, service in _all_services():
                seen.add(self.key(ecs, service))
                try:
                    self._advance_service(ecs, service)
                except Exception:  # one odd service must not stop the others
                    log.exception("simulating %s failed", service.name)
            for key in set(self.tracked) - seen:  # moto was reset: its targets went with it
                del self.tracked[key]
            self._release_enis(seen)
            if self.data_plane is not None:
                self.data_plane.forget_except(f"{key[2]}/{key[3]}" for key in seen)
            self.last_pass = self.clock()

    def _advance_service(self, ecs: Backend, service: Service) -> None:
        """Move one service on if its delay is over, then keep its targets in line."""
        tracked = self.observe(ecs, service)
        if service.status == DRAINING and self.clock() - (tracked.deleted_at or 0) >= self.drain:
            service.status = INACTIVE  # its tasks stopped
        if service.status != ACTIVE:  # deleted: its tasks drain away (out of the groups now)
            if service.status == INACTIVE:
                tracked.running = 0
            tracked.settled = True
            service.pending_count = 0
        elif not tracked.settled and self.clock() - tracked.changed_at >= self.delay:
            self._settle(ecs, service, tracked)
        service.running_count = tracked.running
        self._sync_targets(ecs, service, tracked)
        self._sync_enis(ecs, service, tracked)
        if self.data_plane is not None:
            self.data_plane.sync(service)

    def _settle(self, ecs: Backend, service: Service, tracked: Tracked) -> None:
        """The delay is over: the rollout completes, or fails and rolls back."""
        primary = service.deployments[0] if service.deployments else None
        failure = None if primary is None else start_failure(ecs, primary["taskDefinition"])
        if failure is None and primary is not None and self.data_plane is not None:
            failure = self.data_plane.rollout(ecs, service, primary)
            if failure == "pending":  # wordpress.PENDING: its tasks are not healthy yet
                return
        if primary is None or failure is None:
            complete_rollout(service)
            tracked.running = service.desired_count
            if primary is not None:
                tracked.stable_task_definition = primary["taskDefinition"]
            tracked.settled = True
            return
        if primary.get("rolloutState") != "FAILED":
            fail_rollout(service, tracked.running, failure)
        rollback_to = tracked.stable_task_definition
        if rollback_to is None or rollback_to == primary["taskDefinition"]:
            tracked.settled = True  # nothing to go back to: stays FAILED, nothing runs
            return
        rollback = start_deployment(service, rollback_to, f"rolling back to {rollback_to}")
        # Keep only the FAILED deployment next to the rollback, so that it stays visible
        # (for one more delay) until the rollback completes and removes it.
        service.deployments[:] = [rollback, primary]
        tracked.changed_at = self.clock()

    def _sync_targets(self, ecs: Backend, service: Service, tracked: Tracked) -> None:
        """Register one ip target per running task in each target group; deregister the rest."""
        elbv2 = _region_backend("elbv2", ecs.account_id, ecs.region_name)
        ec2 = _region_backend("ec2", ecs.account_id, ecs.region_name)
        count = tracked.running if service.status == ACTIVE else 0
        ips = task_ips(service, count, ec2)
        wanted: dict[str, dict[str, int]] = {}
        for lb in service.load_balancers or []:
            arn = lb.get("targetGroupArn")
            if arn:
                port = int(lb.get("containerPort") or 80)
                wanted.setdefault(arn, {}).update(dict.fromkeys(ips, port))
        for arn in set(tracked.targets) | set(wanted):
            target_group = elbv2.target_groups.get(arn) if elbv2 is not None else None
            want = wanted.get(arn, {})
            if target_group is None:  # deleted (or never existed): nothing to keep in line
                tracked.targets.pop(arn, None)
                continue
            had = tracked.targets.get(arn, set())
            stale = [{"Id": ip} for ip in had - set(want) if ip in target_group.targets]
            if stale:
                target_group.deregister(stale)
            new = [
                {"Id": ip, "Port": port}
                for ip, port in want.items()
                if target_group.targets.get(ip, {}).get("Port") != port
            ]
            if new:  # the room is a walk over every balancer's rules: only when needed
                new = new[:elb_quotas.target_room(elbv2, arn)]  # ECS: TooManyTargets
            if new:
                target_group.register(new)
            if want:
                tracked.targets[arn] = set(want)
            else:
                tracked.targets.pop(arn, None)

    def _sync_enis(self, ecs: Backend, service: Service, tracked: Tracked) -> None:
        """One interface per running task in its subnet; a stopped task's starts to go."""
        ec2 = _region_backend("ec2", ecs.account_id, ecs.region_name)
        if ec2 is None:
            return
        key, now = self.key(ecs, service), self.clock()
        groups = _security_groups(service, ec2)
        placements = task_placements(service, tracked.running, ec2) if groups else []
        wanted = {ip: subnet for subnet, ip in placements if subnet}
        live: dict[str, str] = {}
        for eni_id in self.enis_of.get(key, ()):
            eni = self.enis[eni_id]
            if eni.stopped_at is not None:
                continue
            if eni.ip in wanted and eni.groups == groups:
                live[eni.ip] = eni_id
            else:
                eni.stopped_at = now
        for ip, subnet in wanted.items():
            if ip not in live:
                made = ec2.create_network_interface(
                    subnet=subnet, private_ip_address=ip, group_ids=list(groups),
                    description=f"{ecs_attachment_arn(ecs)}",
                )
                made.status, made.requester_managed = "in-use", True
                self.enis[str(made.id)] = TaskEni(key, ip, groups)
                self.enis_of.setdefault(key, set()).add(str(made.id))

    def _release_enis(self, seen: set[ServiceKey]) -> None:
        """Delete the interfaces whose task stopped ``eni_release`` seconds ago."""
        now = self.clock()
        for eni_id, eni in list(self.enis.items()):
            if eni.stopped_at is None and eni.service not in seen:
                eni.stopped_at = now  # its service is gone from moto
            if eni.stopped_at is None or now - eni.stopped_at < self.eni_release:
                continue
            account, region = eni.service[0], eni.service[1]
            ec2 = _region_backend("ec2", account, region)
            if ec2 is not None:
                ec2.enis.pop(eni_id, None)  # gone already when moto was reset
            del self.enis[eni_id]
            ids = self.enis_of.get(eni.service, set())
            ids.discard(eni_id)
            if not ids:
                self.enis_of.pop(eni.service, None)

    def run(self, stop: threading.Event, period: float = DEFAULT_PERIOD_SECONDS) -> None:
        """Call :meth:`step` every ``period`` seconds until ``stop`` is set."""
        log.info("simulator running: delay %.1fs, drain %.1fs, ENI release %.1fs, period %.1fs",
                 self.delay, self.drain, self.eni_release, period)
        while not stop.wait(period):
            try:
                self.step()
            except Exception:  # keep simulating whatever happens in one pass
                log.exception("simulator pass failed")


def ecs_attachment_arn(ecs: Backend) -> str:
    """An ECS attachment ARN: what a Fargate task's interface has as its description."""
    return (f"arn:aws:ecs:{ecs.region_name}:{ecs.account_id}:attachment/"
            f"{random.getrandbits(128):032x}")


def _region_backend(service_name: str, account_id: str, region: str) -> Backend | None:
    """moto's backend of ``service_name`` for one account and region (created if needed)."""
    try:
        return get_backend(service_name)[account_id][region]  # type: ignore[call-overload]
    except Exception:  # region unknown to that service
        return None


def _all_services() -> list[tuple[Backend, Service]]:
    """Every (ECS backend, service) pair moto holds; a snapshot, as requests run meanwhile."""
    pairs: list[tuple[Backend, Service]] = []
    for per_account in list(get_backend("ecs").values()):
        for ecs in list(per_account.values()):
            pairs.extend((ecs, service) for service in list(ecs.services.values()))
    return pairs
