"""The orphan scan (HLD 5.4): what carries the operator's tags that no manifest owns.

Resources are listed first and the manifests second: a manifest created in between then
owns its new resources, and one deleted in between only delays its orphans to the next
scan. A kind whose service refuses to answer is recorded in `ScanResult.errors` and the
scan goes on; failing to list the manifests fails the whole scan, because with no owners
everything would look orphaned.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from typing import Any

import pymysql
from botocore.exceptions import ClientError

from wpenv import aws, kube, metrics
from wpenv.errors import OperatorError
from wpenv.orphans.model import (
    UNTAGGED,
    Item,
    Owners,
    ScanResult,
    classify,
    describe,
    item_of,
    mysql_names,
    mysql_tenant,
    owners_from,
)
from wpenv.reconcilers import registry
from wpenv.reconcilers.base import Resource
from wpenv.settings import Settings

log = logging.getLogger(__name__)

PAGE_SIZE = 500


def all_kinds() -> dict[str, Resource]:
    """Every kind, by name, in the order cleanup deletes them (the registry reversed)."""
    return {kind.kind: kind for kind in reversed(registry.KINDS)}


def listing(kind: Resource, settings: Settings, clients: Any) -> Iterator[Item]:
    """The kind's managed instances that `settings.operator_name` manages, as Items."""
    for found in kind.managed(clients, settings):
        item = item_of(kind.kind, found, settings.operator_name)
        if item is not None:
            yield item


def list_environments(kube_api: kube.Api) -> Iterator[dict[str, Any]]:
    """Every WordPressEnvironment in the cluster, paged."""
    token: str | None = None
    while True:
        query: dict[str, Any] = {"limit": PAGE_SIZE}
        if token:
            query["continue"] = token
        page = kube_api.request("GET", kube.environments(), query=query) or {}
        yield from page.get("items") or []
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return


def list_owners(kube_api: kube.Api) -> Owners:
    """What the WordPressEnvironments that exist right now own."""
    return owners_from(list_environments(kube_api))


def safe_error(exc: BaseException) -> str:
    """What went wrong, in words that can hold no secret (codes, AWS's own messages)."""
    if isinstance(exc, ClientError):
        message = exc.response.get("Error", {}).get("Message", "")
        return f"{aws.error_code(exc)}: {message}".rstrip(": ")
    if isinstance(exc, pymysql.MySQLError):
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else "?"
        return f"MySQL error {code}"
    if isinstance(exc, OperatorError):  # its message is safe to show by contract
        return f"{exc.reason}: {exc}"
    return type(exc).__name__


def scan(settings: Settings, clients: Any, kube_api: kube.Api) -> ScanResult:
    """List every resource the operator tagged (and every `wp_` database), then classify.

    Always every kind: whether a database is retained depends on its tenant's tagged
    resources, so filter the result rather than the scan. Blocking; no metric and no log
    line per orphan (`run_scan` adds those).
    """
    found: list[Item] = []
    errors: dict[str, str] = {}
    for name, kind in all_kinds().items():
        try:
            found.extend(listing(kind, settings, clients))
        except Exception as exc:  # one service down must not hide the others
            errors[name] = safe_error(exc)
            log.warning("orphan scan: could not list %s: %s", name, errors[name])
    owners = list_owners(kube_api)
    known = mysql_names({item.tenant for item in found if item.tenant} | set(owners.tenants))
    found = [
        dataclasses.replace(item, tenant=mysql_tenant(item.id, known))
        if item.kind in UNTAGGED
        else item
        for item in found
    ]
    owned, retained, orphans = classify(found, owners)
    return ScanResult(orphans=orphans, retained=retained, owned=owned, errors=errors)


def run_scan(settings: Settings, clients: Any, kube_api: kube.Api) -> ScanResult:
    """The periodic scan the operator runs: scan, set the gauge, log each orphan.

    Blocking (boto3, pymysql and the Kubernetes client): call it from a thread, e.g.
    `await loop.run_in_executor(None, run_scan, ...)`, every
    `settings.orphan_scan_interval_seconds`.
    """
    result = scan(settings, clients, kube_api)
    for kind, count in result.counts().items():
        metrics.ORPHANED_RESOURCES.labels(kind=kind).set(count)
    for item in result.orphans:
        log.warning("orphaned %s", describe(item))
    log.info(
        "orphan scan: %d orphaned, %d retained, %d owned resource(s)%s",
        len(result.orphans),
        len(result.retained),
        len(result.owned),
        f"; not scanned: {', '.join(sorted(result.errors))}" if result.errors else "",
    )
    return result
