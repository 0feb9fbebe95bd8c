"""`python -m wpenv.orphans report|cleanup`: the orphan scan from a shell or a CronJob.

Reads the same WPENV_* settings, AWS credentials and KUBECONFIG (or in-cluster account)
as the operator. Exit codes, so a CronJob or CI can alert:

- 0: the scan was complete and, for `report`, found no orphan; for `cleanup`, every
  selected orphan was removed (or, in a dry run, listed);
- 1: some kind could not be scanned, or a deletion failed;
- 2: bad arguments (argparse);
- 3: `report` found orphans, or `cleanup --execute` had to leave some (needs archiving,
  or no owner could be ruled out).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence

from wpenv import kube
from wpenv.aws import Clients
from wpenv.orphans.cleanup import FAILED, SKIPPED, cleanup
from wpenv.orphans.model import DELETION_ORDER, report_lines, select
from wpenv.orphans.scan import scan
from wpenv.settings import Settings

OK, INCOMPLETE, ORPHANS = 0, 1, 3


def kube_api() -> kube.Api:
    """The Kubernetes API with in-cluster credentials or the KUBECONFIG file."""
    kube.load_config()
    return kube.api()


def parser() -> argparse.ArgumentParser:
    """The command line."""
    cli = argparse.ArgumentParser(
        prog="python -m wpenv.orphans",
        description="Find (and remove) AWS resources and databases no WordPressEnvironment "
        "owns. Exit 0: none; 1: scan incomplete or a delete failed; 3: orphans (left).",
    )
    commands = cli.add_subparsers(dest="command", required=True)
    report = commands.add_parser("report", help="list orphaned and retained resources")
    report.add_argument("--json", action="store_true", help="print JSON instead of lines")
    clean = commands.add_parser(
        "cleanup", help="delete orphans (a dry run unless --execute)"
    )
    clean.add_argument("--execute", action="store_true", help="really delete")
    clean.add_argument(
        "--environment", action="append", default=[], metavar="NS.NAME",
        help="only this environment's orphans (repeatable)",
    )
    clean.add_argument(
        "--kind", action="append", default=[], choices=DELETION_ORDER,
        help="only orphans of this kind (repeatable)",
    )
    clean.add_argument(
        "--tenant", action="append", default=[], help="only this tenant's orphans (repeatable)"
    )
    clean.add_argument("--json", action="store_true", help="print JSON instead of lines")
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the exit code."""
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("WPENV_LOG_LEVEL", "WARNING"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    settings = Settings()
    clients = Clients(settings)
    api = kube_api()
    result = scan(settings, clients, api)
    errors = [f"not scanned: {kind}: {error}" for kind, error in sorted(result.errors.items())]

    if args.command == "report":
        if args.json:
            print(json.dumps(result.as_dict(), indent=2, sort_keys=True))
        else:
            print(f"Orphaned resources: {len(result.orphans)}")
            for line in report_lines(result.orphans):
                print(f"  {line}")
            print(f"Retained on purpose: {len(result.retained)}")
            for line in report_lines(result.retained):
                print(f"  {line}")
            for line in errors:
                print(line)
        if not result.complete:
            return INCOMPLETE
        return ORPHANS if result.orphans else OK

    chosen = select(
        result.orphans, environments=args.environment, kinds=args.kind, tenants=args.tenant
    )
    actions = cleanup(chosen, settings, clients, api, execute=args.execute)
    if args.json:
        print(json.dumps(
            {
                "execute": args.execute,
                "complete": result.complete,
                "actions": [action.as_dict() for action in actions],
                "errors": result.errors,
            },
            indent=2,
            sort_keys=True,
        ))
    else:
        if not args.execute:
            print("Dry run: nothing is deleted without --execute.")
        for action in actions:
            print(action.line())
        if not actions:
            print("No orphan matches.")
        for line in errors:
            print(line)
    outcomes = {action.outcome for action in actions}
    if FAILED in outcomes or not result.complete:
        return INCOMPLETE
    return ORPHANS if SKIPPED in outcomes else OK


if __name__ == "__main__":
    raise SystemExit(main())
