"""Dump a tenant's MySQL database to S3, prove the dump restores, and load one back.

**Dump.** `mariadb-dump` (or `mysqldump`) with `--single-transaction`, so InnoDB tables
are read from one consistent snapshot without locking them, plus routines, triggers,
events and BLOBs as hex. Only the tables of the one database are dumped, without
`--databases`: the dump holds no `CREATE DATABASE` and no `USE`, so it loads into any
database name (a scratch one to verify it, a new tenant's on restore). The client's
output is gzipped as it arrives and streamed into a multipart upload, so memory stays
bounded whatever the size of the database.

**Checks.** Row count (`SELECT COUNT(*)`) and `CHECKSUM TABLE` of every base table.
The finalizer dumps after the tenant's ECS service has been scaled to zero, so nothing
writes to the database any more and checks taken right after the dump describe the same
data as the dump's snapshot; they go into the manifest. CHECKSUM TABLE depends on the
server version and the row format, so checks compare like with like: the original and a
copy loaded on the same server.

**Verify.** The object is read back from S3, gunzipped and piped into the `mariadb` client
loading a scratch database `wpv_<hash>`, created fresh and always dropped afterwards; then
every table's checks are compared with the original's *current* checks (so a row changed
after the dump is caught), and the sha256 read back with the one written.

**Definers.** Triggers, routines, events and views in a dump name their definer. Loading
them as someone else needs SUPER (MySQL 8: SET_USER_ID), which the RDS master user lacks,
and the definer would be a user that no longer exists after a restore. Loading therefore
rewrites every `DEFINER=` clause to `DEFINER=CURRENT_USER`: the scratch copy belongs to
the loading master (events are also switched to DISABLE there, so no tenant-written event
can run with the master's privileges; triggers, views and routines of the scratch copy are
never executed: the load inserts before it creates triggers, and the checks read base
tables only), and a restore loads as the new tenant's own user, who then owns them.

**Secrets.** The password reaches the client through options it reads from a pipe
(`--defaults-file=/dev/fd/N`, the first argument, which also keeps the machine's own
option files out of the way): never a file, so a process killed mid-dump leaves nothing
on disk (`sweep_stale_option_files` removes what earlier versions left in $TMPDIR). It
never appears in argv, the environment
(MYSQL_* variables are removed from the child's), a log line or an exception: client
errors are passed on redacted and cut to their error code where they could quote data.

**TLS.** The same options make the client verify the server as `wpenv.mysql` does:
`ssl-ca` (the settings' CA bundle), `ssl-verify-server-cert` (MySQL 8's client:
`ssl-mode=VERIFY_IDENTITY`) and TLS 1.2 or 1.3, so neither the dump nor the password
crosses the network in clear.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import pymysql

from wpenv import reasons
from wpenv.archive.compare import differences
from wpenv.archive.compression import GzipWriter, gunzip
from wpenv.archive.errors import ArchiveError, ArchiveVerificationError
from wpenv.archive.s3stream import GZIP, ArchivedObject, Destination, S3Reader
from wpenv.crashpoints import DUMP, MIDDLE, crashpoint
from wpenv.mysql import DatabaseServer, tls_options

# Re-exported: wpenv.deprovision (and hooks) call it as db_archive.master_server.
from wpenv.mysql import master_server as master_server  # noqa: PLC0414
from wpenv.plan import sql_identifier

if TYPE_CHECKING:
    from wpenv.mysql import MySQLConnection

log = logging.getLogger(__name__)

DUMP_PROGRAMS = ("mariadb-dump", "mysqldump")
CLIENT_PROGRAMS = ("mariadb", "mysql")
# Every flag exists in mariadb-dump 10.11 and in MySQL 8's mysqldump.
DUMP_OPTIONS = (
    "--single-transaction",
    "--routines",
    "--triggers",
    "--events",
    "--hex-blob",
    "--no-tablespaces",
    "--default-character-set=utf8mb4",
    "--max-allowed-packet=1073741824",
)
# MySQL's own mysqldump (not MariaDB's, which refuses them): leave GTID statements out
# (they need SUPER to load) and do not ask a MariaDB server for MySQL 8 column statistics.
MYSQL_DUMP_OPTIONS = ("--set-gtid-purged=OFF", "--column-statistics=0")
LOAD_OPTIONS = (
    "--batch",
    "--binary-mode",  # data may hold what the client would otherwise read as commands
    "--default-character-set=utf8mb4",
    "--max-allowed-packet=1073741824",
)
# Binaries outside a non-login shell's PATH on some distributions.
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/bin", "/usr/bin"])
PIPE_CHUNK = 256 * 1024
STDERR_KEEP = 64 * 1024
CONNECT_TIMEOUT = 10
# CHECKSUM TABLE reads every row: a big table takes a while.
QUERY_TIMEOUT = 3600
SCRATCH_PREFIX = "wpv_"
TABLE_TYPES = ("BASE TABLE", "SYSTEM VERSIONED")
_CHARSET = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_CLIENT_ERROR = re.compile(r"ERROR (\d+)(?: \(\w+\))?(?: at line (\d+))?")

NO_PROGRAM = "none of {programs} is installed (Debian: apt-get install mariadb-client)"
DUMP_FAILED = "dumping database {database} failed: {detail}"
LOAD_FAILED = "loading the archive into database {database} failed: {detail}"
UNSAFE_TABLE = "database {database} has a table whose name cannot be quoted safely: {table!r}"
MISMATCH = "the archive of database {database} does not match it: {problems}"
DRIFTED = "database {database} changed after it was dumped: {problems}"
EVENT_NOT_DISABLED = "an event in the dump could not be switched off for verification"
LINE_TOO_LONG = "a statement with a DEFINER clause is longer than {limit} bytes"


# --- the connection -----------------------------------------------------------------------


def open_connection(server: DatabaseServer, database: str | None = None) -> MySQLConnection:
    """A connection with a long read timeout (checksums of big tables are slow)."""
    return server.connect(database, connect_timeout=CONNECT_TIMEOUT, io_timeout=QUERY_TIMEOUT)


# --- table checks --------------------------------------------------------------------------


@dataclass(frozen=True)
class TableCheck:
    """What a table holds, in two numbers that a faithful copy reproduces."""

    rows: int
    checksum: int | None  # None where the engine gives no checksum


def quote_table(database: str, table: str) -> str:
    """`database`.`table` for a table name read from the server.

    Our own names go through `sql_identifier`; a tenant's table may be called anything
    MySQL allows (`wp-stats`, with spaces, ...), so a name it refuses is quoted the way
    MySQL defines instead (backticks doubled), which is safe for every name MySQL accepts.
    """
    try:
        return f"{sql_identifier(database)}.{sql_identifier(table)}"
    except ValueError:
        pass
    if not table or len(table) > 64 or "\0" in table:
        raise ArchiveError(
            reasons.UNSUPPORTED_TABLE_NAME, UNSAFE_TABLE.format(database=database, table=table)
        )
    escaped = table.replace("`", "``")
    return f"{sql_identifier(database)}.`{escaped}`"


def table_names(conn: MySQLConnection, database: str, *, base_only: bool = True) -> list[str]:
    """The database's tables (only base tables unless told otherwise), sorted."""
    with conn.cursor() as cursor:
        if base_only:
            cursor.execute(
                "SELECT TABLE_NAME FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA = %s AND TABLE_TYPE IN %s ORDER BY TABLE_NAME",
                (database, TABLE_TYPES),
            )
        else:
            cursor.execute(
                "SELECT TABLE_NAME FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME",
                (database,),
            )
        return [str(row[0]) for row in cursor.fetchall()]


def table_checks(conn: MySQLConnection, database: str) -> dict[str, TableCheck]:
    """Rows and CHECKSUM TABLE of every base table of `database` (views have no data)."""
    checks: dict[str, TableCheck] = {}
    with conn.cursor() as cursor:
        for table in table_names(conn, database):
            name = quote_table(database, table)
            cursor.execute(f"SELECT COUNT(*) FROM {name}")  # noqa: S608 (quoted identifiers)
            (rows,) = cursor.fetchone() or (0,)
            cursor.execute(f"CHECKSUM TABLE {name}")
            found = cursor.fetchone()
            checksum = found[1] if found else None
            checks[table] = TableCheck(
                rows=int(rows), checksum=None if checksum is None else int(checksum)
            )
    return checks


def compare_checks(
    expected: Mapping[str, TableCheck],
    actual: Mapping[str, TableCheck],
    expected_label: str = "the original",
    actual_label: str = "the archive",
) -> list[str]:
    """One sentence per table that is missing, extra or different (no I/O)."""

    def differs(table: str, want: TableCheck, have: TableCheck) -> str | None:
        if want.rows != have.rows:
            return (f"table {table} has {want.rows} rows in {expected_label}, "
                    f"{have.rows} in {actual_label}")
        if want.checksum != have.checksum:
            return f"table {table} has another checksum in {actual_label}"
        return None

    return differences(expected, actual, f"table {{0}} is missing from {actual_label}",
                       f"table {{0}} is in {actual_label} but not in {expected_label}", differs)


def database_exists(conn: MySQLConnection, database: str) -> bool:
    """Whether the schema exists on the server."""
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (database,)
        )
        return cursor.fetchone() is not None


def database_charset(conn: MySQLConnection, database: str) -> tuple[str, str]:
    """(default character set, collation) of a database, to make a copy like it."""
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME "
            "FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
            (database,),
        )
        found = cursor.fetchone()
    charset, collation = (str(found[0]), str(found[1])) if found else ("", "")
    if _CHARSET.fullmatch(charset) and _CHARSET.fullmatch(collation):
        return charset, collation
    return "utf8mb4", "utf8mb4_unicode_ci"


def create_database(
    conn: MySQLConnection, database: str, charset: tuple[str, str], *, fresh: bool
) -> None:
    """CREATE DATABASE with the given defaults, dropping one of that name first if `fresh`."""
    name = sql_identifier(database)
    with conn.cursor() as cursor:
        if fresh:
            cursor.execute(f"DROP DATABASE IF EXISTS {name}")
        cursor.execute(
            f"CREATE DATABASE IF NOT EXISTS {name} CHARACTER SET {charset[0]} COLLATE {charset[1]}"
        )


def drop_database(server: DatabaseServer, database: str) -> None:
    """DROP DATABASE IF EXISTS on a connection of its own (the caller's may be broken)."""
    with closing(open_connection(server)) as conn, conn.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {sql_identifier(database)}")


def scratch_database_name(database: str, uri: str) -> str:
    """`wpv_<40 hex>`: the same for one database and object, so a retry reuses (and first
    drops) what a crashed verification left, and never a tenant's `wp_...` name."""
    digest = hashlib.sha256(f"{database}\n{uri}".encode()).hexdigest()[:40]
    return f"{SCRATCH_PREFIX}{digest}"


# --- the client programs ------------------------------------------------------------------


def find_program(candidates: Iterable[str]) -> str:
    """The first of `candidates` on the PATH (MariaDB's names first, then MySQL's)."""
    names = tuple(candidates)
    for name in names:
        path = shutil.which(name, path=SEARCH_PATH)
        if path:
            return path
    raise ArchiveError(reasons.MYSQL_CLIENT_MISSING, NO_PROGRAM.format(programs=", ".join(names)))


@functools.cache
def is_mariadb_client(program: str) -> bool:
    """Whether a client program is MariaDB's (`mysqldump` may be either's)."""
    try:
        version = subprocess.run(  # noqa: S603 (a client found on the PATH, no shell)
            [program, "--version"], capture_output=True, check=False, timeout=30, env=child_env()
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return True  # the dump itself will then say what is wrong
    return b"mariadb" in version.lower()


def dump_options(program: str) -> tuple[str, ...]:
    """The dump flags for this client program."""
    extra = () if is_mariadb_client(program) else MYSQL_DUMP_OPTIONS
    return (*DUMP_OPTIONS, *extra)


def option_value(value: str) -> str:
    """`value` as a double-quoted option-file value: every character survives, `#` too."""
    escaped = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


def option_file_text(server: DatabaseServer, *, mariadb: bool = True) -> str:
    """The `[client]` group the dump and load clients read (holds the password).

    `mariadb`: whether MariaDB's client reads it (its TLS options differ from MySQL's).
    """
    tls = "".join(
        f"{name}={option_value(value)}\n" if value is not None else f"{name}\n"
        for name, value in tls_options(server, mariadb=mariadb)
    )
    return (
        "[client]\n"
        f"host={option_value(server.host)}\n"
        f"port={int(server.port)}\n"
        "protocol=TCP\n"
        f"user={option_value(server.user)}\n"
        f"password={option_value(server.password)}\n"
        f"{tls}"
    )


# The option text in a pipe must fit in the pipe's buffer (64 KiB on Linux; the text is a
# host, a user, a password and a CA path: a few KiB at most), as it is written before the
# client starts to read.
OPTION_TEXT_MAX = 16 * 1024
# What option files of earlier versions were named in $TMPDIR (`sweep_stale_option_files`).
STALE_OPTION_FILES = "wpenv-mysql-*.cnf"


@contextlib.contextmanager
def option_pipe(server: DatabaseServer, *, mariadb: bool = True) -> Iterator[int]:
    """The option text in a pipe; the read end's descriptor, for `--defaults-file=/dev/fd/N`.

    Not a file: a process killed while its client runs (a crash, an OOM kill) leaves
    nothing holding the password on disk. Not MYSQL_PWD either: the client's manual calls
    that insecure (another process of the same user can read a process's environment) and
    MySQL 8 deprecates it. The pipe is written and its write end closed before the client
    starts, so the client reads it to the end like a file; only the child inherits the read
    end (`pass_fds`), and both ends close when the block ends.
    """
    text = option_file_text(server, mariadb=mariadb).encode()
    if len(text) > OPTION_TEXT_MAX:
        raise ArchiveError(reasons.INTERNAL_ERROR, "the client's options are too long")
    read, write = os.pipe()
    try:
        with os.fdopen(write, "wb") as out:
            out.write(text)
        yield read
    finally:
        os.close(read)


def sweep_stale_option_files(directory: str | None = None) -> list[Path]:
    """Remove the option files (mode 0600, they hold the master password) that earlier
    versions wrote in $TMPDIR and a killed process left behind; those removed.

    This version writes none (`option_pipe`); the files of this user only, at start-up.
    """
    removed = []
    for path in Path(directory or tempfile.gettempdir()).glob(STALE_OPTION_FILES):
        with contextlib.suppress(OSError):
            if path.is_file() and not path.is_symlink() and path.stat().st_uid == os.getuid():
                path.unlink()
                removed.append(path)
    if removed:
        log.warning("Removed %d stale MySQL option files from an earlier run", len(removed))
    return removed


def child_env() -> dict[str, str]:
    """Our environment without MYSQL_* (MYSQL_PWD, MYSQL_HOST, ...), which clients honour."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MYSQL_")}


class _Drain(threading.Thread):
    """Reads a child's stderr to the end (so it cannot block on a full pipe), keeping the tail."""

    def __init__(self, stream: IO[bytes]) -> None:
        super().__init__(name="mysql-stderr", daemon=True)
        self._stream = stream
        self._tail = bytearray()

    def run(self) -> None:
        fd = self._stream.fileno()
        while chunk := os.read(fd, PIPE_CHUNK):
            self._tail += chunk
            del self._tail[:-STDERR_KEEP]

    def text(self, secrets: Iterable[str] = ()) -> str:
        """What the child said, with every secret blanked out."""
        self.join(timeout=10)
        text = self._tail.decode("utf-8", errors="replace")
        for secret in secrets:
            if secret:
                text = text.replace(secret, "***")
        return text


@dataclass
class ClientRun:
    """One run of a client program: `proc` inside the block, its outcome after it."""

    proc: subprocess.Popen[bytes]
    returncode: int = -1  # set once the block is left without an exception
    stderr: str = ""  # the tail of what it said, the password blanked out


@contextlib.contextmanager
def run_client(
    server: DatabaseServer,
    program: str,
    options: Iterable[str],
    database: str,
    *,
    stdin: int,
    stdout: int,
) -> Iterator[ClientRun]:
    """Run a client program on `database`, logged in through options read from a pipe.

    The option file is the first argument (see the module's notes on secrets). Stderr is
    drained by a thread, so the child cannot block on a full pipe; an exception in the
    block kills the child, and leaving the block normally waits for it.
    """
    with option_pipe(server, mariadb=is_mariadb_client(program)) as fd:
        argv = [program, f"--defaults-file=/dev/fd/{fd}", *options, database]
        with subprocess.Popen(  # noqa: S603 (no shell; the password is not in argv)
            argv, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, env=child_env(),
            pass_fds=(fd,),
        ) as proc:
            assert proc.stderr is not None
            drain = _Drain(proc.stderr)
            drain.start()
            run = ClientRun(proc)
            try:
                yield run
            except BaseException:
                proc.kill()
                drain.join(timeout=10)
                raise
            run.returncode = proc.wait()
            # Read to the end before Popen's exit closes the pipe under the drain thread.
            run.stderr = drain.text([server.password])


def dump_problem(returncode: int, stderr: str) -> str:
    """Why a dump failed, or '' when it did not: a non-zero exit or an error on stderr.

    The dump client's messages quote its own statements, never table data, so the first
    error line is passed on (already redacted, and cut short).
    """
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    if returncode == 0 and not errors:
        return ""
    if not lines:
        return f"exit status {returncode}"
    detail = (errors or lines)[0]
    if len(detail) > 300:
        detail = detail[:300] + "..."
    return detail if returncode == 0 else f"exit status {returncode}: {detail}"


def load_problem(returncode: int, stderr: str) -> str:
    """Why a load failed, as the server's error code and line only.

    The rest of the client's message can quote the statement near the error, which is
    tenant data; the code and line number are enough to find it in the archive.
    """
    found = _CLIENT_ERROR.search(stderr)
    if found is None:
        return f"the client exited with status {returncode}"
    code, line = found.groups()
    return f"MySQL error {code}" + (f" at line {line} of the dump" if line else "")


# --- DEFINER clauses ----------------------------------------------------------------------

# How mysqldump and mariadb-dump start the statements that name a definer: triggers,
# events, routines and views. Row lines start with "(" or "INSERT", never with these.
_DEFINER_HEADS = (
    rb"/*!50003 CREATE*/ /*!50017 ",  # trigger
    rb"/*!50106 CREATE*/ /*!50117 ",  # event
    rb"CREATE ",  # procedure, function
    rb"/*!50013 ",  # view
)
_EVENT_HEAD = _DEFINER_HEADS[1]
_CANDIDATES = tuple(head + b"DEFINER=" for head in _DEFINER_HEADS)
_LOOKAHEAD = max(len(c) for c in _CANDIDATES)
_ACCOUNT_PART = rb"(?:`(?:[^`\n]|``)*`|'(?:[^'\\\n]|\\.|'')*'|[A-Za-z0-9_.%$-]+)"
_DEFINER = re.compile(
    rb"^(?P<head>"
    + b"|".join(re.escape(head) for head in _DEFINER_HEADS)
    + rb")DEFINER="
    + _ACCOUNT_PART
    + rb"@"
    + _ACCOUNT_PART
    + rb"(?P<rest>[^\n]*)",
    re.MULTILINE,
)
_EVENT_STATUS = re.compile(
    rb"ON COMPLETION (NOT )?PRESERVE (?:ENABLE|DISABLE ON SLAVE|DISABLE ON REPLICA|DISABLE)\b"
)
MAX_HELD_LINE = 1024 * 1024


class DefinerRewriter:
    """Rewrites `DEFINER=user@host` to `DEFINER=CURRENT_USER` in a dump, as it streams by.

    Whole lines are needed to rewrite, but row lines can be huge, so only a line that
    starts like a definer statement is held back; any other line passes through at once.
    With `disable_events`, every event is created DISABLED (for a scratch copy).
    """

    def __init__(self, *, disable_events: bool = False) -> None:
        """Nothing is held yet; the stream starts at the start of a line."""
        self.disable_events = disable_events
        self._held = b""
        self._passing = False  # inside a line already known not to need a rewrite

    def _replace(self, match: re.Match[bytes]) -> bytes:
        rest = match["rest"]
        if self.disable_events and match["head"] == _EVENT_HEAD:
            rest, count = _EVENT_STATUS.subn(rb"ON COMPLETION \1PRESERVE DISABLE", rest, count=1)
            if not count:
                raise ArchiveVerificationError(
                    reasons.UNSUPPORTED_DUMP_STATEMENT, EVENT_NOT_DISABLED
                )
        return match["head"] + b"DEFINER=CURRENT_USER" + rest

    def _rewrite(self, lines: bytes) -> bytes:
        if b"DEFINER=" not in lines:  # nearly every chunk: rows only
            return lines
        return _DEFINER.sub(self._replace, lines)

    @staticmethod
    def _may_need_rewrite(start: bytes) -> bool:
        head = start[:_LOOKAHEAD]
        return any(c.startswith(head) or head.startswith(c) for c in _CANDIDATES)

    def feed(self, data: bytes) -> bytes:
        """The rewritten bytes that can be passed on now (a candidate line waits for its end)."""
        lead = b""
        if self._passing:
            newline = data.find(b"\n")
            if newline < 0:
                return data
            lead, data = data[: newline + 1], data[newline + 1 :]
            self._passing = False
        data = self._held + data
        self._held = b""
        cut = data.rfind(b"\n") + 1
        complete, tail = data[:cut], data[cut:]
        if self._may_need_rewrite(tail):
            if len(tail) > MAX_HELD_LINE:
                raise ArchiveError(
                    reasons.UNSUPPORTED_DUMP_STATEMENT, LINE_TOO_LONG.format(limit=MAX_HELD_LINE)
                )
            self._held, tail = tail, b""
        elif tail:
            self._passing = True
        return lead + self._rewrite(complete) + tail

    def finish(self) -> bytes:
        """Whatever was held back (a last line without a newline), rewritten."""
        held, self._held = self._held, b""
        return self._rewrite(held)

    def filter(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """`feed` over a stream of chunks, then `finish`."""
        for chunk in chunks:
            out = self.feed(chunk)
            if out:
                yield out
        out = self.finish()
        if out:
            yield out


# --- dump ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatabaseDump:
    """A database archived to S3, and its tables' checks taken right after the dump."""

    database: str
    object: ArchivedObject
    tables: dict[str, TableCheck]


def dump_database(server: DatabaseServer, database: str, to: Destination) -> DatabaseDump:
    """Dump `database` as gzipped SQL to `to` and take its table checks.

    Call it with the tenant's service stopped (see the module's notes). A failed dump
    aborts the upload and raises ArchiveError; nothing is left in S3.
    """
    sql_identifier(database)  # refuse a name the client could read as an option
    program = find_program(DUMP_PROGRAMS)
    with to.writer(GZIP) as writer:
        gz = GzipWriter(writer)
        with run_client(
            server,
            program,
            dump_options(program),
            database,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
        ) as run:
            assert run.proc.stdout is not None
            fd = run.proc.stdout.fileno()
            while chunk := os.read(fd, PIPE_CHUNK):
                gz.write(chunk)
                crashpoint(DUMP, MIDDLE)
            gz.close()
        problem = dump_problem(run.returncode, run.stderr)
        if problem:
            raise ArchiveError(
                reasons.DATABASE_DUMP_FAILED, DUMP_FAILED.format(database=database, detail=problem)
            )
    with closing(open_connection(server)) as conn:
        tables = table_checks(conn, database)
    log.info(
        "dumped database %s to %s (%d bytes gzipped, %d SQL bytes, %d tables)",
        database,
        writer.result.uri,
        writer.result.size,
        gz.size,
        len(tables),
    )
    return DatabaseDump(database=database, object=writer.result, tables=tables)


# --- load and verify -----------------------------------------------------------------------


def load_sql(server: DatabaseServer, database: str, chunks: Iterable[bytes]) -> None:
    """Pipe SQL into the `mariadb` client connected to `database`; its failure raises.

    `chunks` is consumed in this thread, so an error it raises (a corrupt gzip stream)
    stops the client and propagates as it is.
    """
    sql_identifier(database)
    program = find_program(CLIENT_PROGRAMS)
    with run_client(
        server, program, LOAD_OPTIONS, database, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL
    ) as run:
        assert run.proc.stdin is not None
        broken = _write_all(run.proc.stdin, chunks)
    if run.returncode != 0 or broken:
        detail = load_problem(run.returncode, run.stderr)
        raise ArchiveVerificationError(
            reasons.DATABASE_LOAD_FAILED, LOAD_FAILED.format(database=database, detail=detail)
        )


def _write_all(stdin: IO[bytes], chunks: Iterable[bytes]) -> bool:
    """Write every chunk to a client and close its input; True if it stopped reading first
    (then its stderr says why)."""
    broken = False
    for chunk in chunks:
        try:
            stdin.write(chunk)
        except BrokenPipeError:
            broken = True
            break
    with contextlib.suppress(BrokenPipeError):
        stdin.close()
    return broken


def load_archive(
    server: DatabaseServer,
    database: str,
    s3: Any,
    archived: ArchivedObject,
    *,
    disable_events: bool = False,
) -> None:
    """Stream an archived dump from S3 into `database`, then insist on its size and sha256."""
    with S3Reader(s3, archived.bucket, archived.key) as reader:
        rewriter = DefinerRewriter(disable_events=disable_events)
        load_sql(server, database, rewriter.filter(gunzip(reader.chunks(), archived.uri)))
        reader.check(archived)


def verify_dump(
    server: DatabaseServer,
    s3: Any,
    database: str,
    archived: ArchivedObject,
    dumped_tables: Mapping[str, TableCheck] | None = None,
) -> dict[str, TableCheck]:
    """Prove that `archived` restores to exactly what `database` holds now.

    Loads it into a fresh scratch database (dropped afterwards, whatever happens), then
    compares every table's rows and checksum with the original's current ones, and with
    `dumped_tables` (the checks taken at dump time) when given. Returns the checks.
    Raises ArchiveVerificationError naming the tables that differ.
    """
    scratch = scratch_database_name(database, archived.uri)
    with closing(open_connection(server)) as conn:
        charset = database_charset(conn, database)
        create_database(conn, scratch, charset, fresh=True)
    try:
        load_archive(server, scratch, s3, archived, disable_events=True)
        with closing(open_connection(server)) as conn:
            original = table_checks(conn, database)
            loaded = table_checks(conn, scratch)
        problems = compare_checks(original, loaded)
        if problems:
            raise ArchiveVerificationError(
                reasons.DATABASE_ARCHIVE_MISMATCH,
                MISMATCH.format(database=database, problems="; ".join(problems[:10])),
            )
        if dumped_tables is not None:
            drift = compare_checks(dumped_tables, original, "the dump", "the database now")
            if drift:
                raise ArchiveVerificationError(
                    reasons.DATABASE_CHANGED_AFTER_DUMP,
                    DRIFTED.format(database=database, problems="; ".join(drift[:10])),
                )
    except BaseException:
        try:
            drop_database(server, scratch)
        except pymysql.MySQLError as exc:  # keep the error that matters; a retry drops it
            log.warning("could not drop scratch database %s: %s", scratch, exc)
        raise
    drop_database(server, scratch)
    log.info("verified %s against database %s (%d tables)", archived.uri, database, len(loaded))
    return original
