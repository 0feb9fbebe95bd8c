"""`python -m wpenv.archive`: list the archives of an environment, restore one elsewhere.

    python -m wpenv.archive list s3://<bucket>/<prefix>/<namespace>/<name>/
    python -m wpenv.archive restore s3://<bucket>/<prefix>/<namespace>/<name>/<timestamp>/ \\
        --tenant <newTenantId> [--database-only | --files-only] [--force]

A restore goes into a *new* environment, provisioned first (its database, database user,
secret and directory must exist): apply a WordPressEnvironment with the new tenantId,
wait for it to be Active, scale it to 0 replicas, restore, then scale it back up. A
database that already has tables, or a non-empty directory, is refused unless --force.
Every object's sha256 is checked against manifest.json before anything is written, and the
restored tables against its row counts and checksums.

Settings come from the WPENV_* variables, like the operator's (WPENV_DB_MASTER_SECRET_ARN
names the master login, WPENV_EFS_MOUNT_PATH where the file system is mounted), and AWS
credentials from the usual boto3 chain. Extracting files as root makes them the new
tenant's (its POSIX uid); otherwise they belong to whoever runs this. Exit status: 0 done,
1 refused or failed (the reason on stderr), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import logging
import sys

from botocore.exceptions import BotoCoreError, ClientError
from pymysql import MySQLError

from wpenv.archive.restore import list_archives, restore
from wpenv.archive.s3stream import parse_s3_uri
from wpenv.aws import Clients
from wpenv.errors import OperatorError
from wpenv.settings import Settings

log = logging.getLogger("wpenv.archive")


def _uri(value: str) -> str:
    try:
        parse_s3_uri(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def parser() -> argparse.ArgumentParser:
    """The command line."""
    top = argparse.ArgumentParser(
        prog="python -m wpenv.archive",
        description="List and restore the archives deprovisioning makes.",
    )
    commands = top.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="list the archives under an S3 prefix")
    listing.add_argument("uri", type=_uri, help="s3://bucket/<prefix>/<namespace>/<name>/")
    rest = commands.add_parser("restore", help="restore an archive into a new environment")
    rest.add_argument("uri", type=_uri, help="s3://bucket/<prefix>/<namespace>/<name>/<timestamp>/")
    rest.add_argument("--tenant", required=True, help="tenantId of the (provisioned) target")
    only = rest.add_mutually_exclusive_group()
    only.add_argument("--database-only", action="store_true", help="restore the database only")
    only.add_argument("--files-only", action="store_true", help="restore the files only")
    rest.add_argument(
        "--force",
        action="store_true",
        help="replace a database with tables, fill a non-empty directory",
    )
    return top


def main(argv: list[str] | None = None) -> int:
    """Run one command; the exit status says how it went."""
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = Settings()
    clients = Clients(settings)
    try:
        if args.command == "list":
            listings = list_archives(clients.s3, args.uri)
            for item in listings:
                state = "complete" if item.complete else "INCOMPLETE"
                print(f"{item.uri}  {state:<10}  {item.objects} objects  {item.size} bytes")
            if not listings:
                print(f"no archives under {args.uri}")
            return 0
        result = restore(
            settings,
            clients,
            args.uri,
            args.tenant,
            database=not args.files_only,
            files=not args.database_only,
            force=args.force,
        )
    except OperatorError as exc:  # ArchiveError, or no master secret (wpenv.mysql)
        print(f"error ({exc.reason}): {exc}", file=sys.stderr)
        return 1
    except (ClientError, BotoCoreError, MySQLError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if result.database:
        print(f"database {result.database}: {len(result.tables)} tables restored and checked")
    if result.directory:
        print(f"directory {result.directory}: {result.entries} entries restored")
        for name in result.skipped:
            print(f"  skipped (unsafe link or special file): {name!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
