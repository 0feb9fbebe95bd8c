"""Orphan detection (HLD 5.4): resources the operator tagged that no manifest owns.

`run_scan` is what the operator calls periodically (it sets the
`wpenv_orphaned_resources{kind}` gauge and logs each orphan); `scan` is the same without
side effects; `cleanup` removes orphans (a dry run unless told otherwise);
`python -m wpenv.orphans report|cleanup` is the command line. See the README, "Orphans".
"""

from __future__ import annotations

from wpenv.orphans.cleanup import Action, Archiver, cleanup, default_archiver
from wpenv.orphans.model import (
    DELETION_ORDER,
    NEEDS_ARCHIVE,
    Item,
    Owners,
    ScanResult,
    classify,
    deletion_order,
    report_lines,
    select,
)
from wpenv.orphans.scan import list_owners, run_scan, scan

__all__ = [
    "DELETION_ORDER",
    "NEEDS_ARCHIVE",
    "Action",
    "Archiver",
    "Item",
    "Owners",
    "ScanResult",
    "classify",
    "cleanup",
    "default_archiver",
    "deletion_order",
    "list_owners",
    "report_lines",
    "run_scan",
    "scan",
    "select",
]
