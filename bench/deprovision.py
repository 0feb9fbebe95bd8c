"""Benchmark: deprovisioning one environment that holds a realistic amount of data.

Prints figures; asserts nothing (targets are judged from the figures, never in a test).
Runs its own local platform on separate ports (3xxx) and its own operator, and tears both
down.

    .venv/bin/python -m bench.deprovision [--db-mb 100] [--files-mb 500]

1. Applies one environment and waits until it is Ready.
2. Fills the tenant's database the way WordPress would (its own login, from its Secrets
   Manager secret): `wp_posts` with bodies of mixed compressibility (half random words,
   half random base64, like inline images) and `wp_postmeta`, to about --db-mb MB of
   table data (data_length + index_length). Fills the tenant's directory with about
   --files-mb MB of uploads of 100 KB-5 MB (random bytes: as incompressible as JPEGs)
   and a few hundred small text files (plugins, themes).
3. `kubectl delete --wait=false` and times until the object is gone, while a thread reads
   the operator's VmRSS, and that of its child processes (mariadb-dump, mariadb), from
   /proc every 50 ms.
4. Reads the Events (one per step, "Step N/8") and the archive's manifest.json, and
   reports the archive's objects (HeadObject), the compression and each step's time.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import re
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pymysql
import yaml

from bench.platform import new_namespace, private_platform, running_operator
from tests.platform import kube, stack

# Ports of this benchmark's platform and operator (3xxx): away from every other platform on
# the machine (dev, test sessions, bench.provision, bench.lifecycle).
PORTS = {"WPENV_ETCD_PORT": "3790", "WPENV_ETCD_PEER_PORT": "3800",
         "WPENV_APISERVER_PORT": "3443", "WPENV_MOTO_PORT": "3500",
         "WPENV_MYSQL_PORT": "3306"}
OPERATOR_HEALTH_PORT = 3080  # and 3081 for its metrics
LOCAL = stack.REPO / ".local" / "bench-deprovision"
NAME = "big"
READY_TIMEOUT = 300
DEPROVISION_TIMEOUT = 3600.0
SAMPLE_SECONDS = 0.05
GONE_POLL_SECONDS = 0.5
PROGRESS_SECONDS = 15.0
HLD_TARGET_SECONDS = 600.0
MB = 1_000_000
KB = 1000
BATCH_BYTES = 4 * MB  # raw SQL values per executemany + commit
POST_BODY = (2 * KB, 40 * KB)
UPLOAD_SIZE = (100 * KB, 5 * MB)
SMALL_FILES = 300
SMALL_FILE_SIZE = (500, 16 * KB)
FILL_ROUNDS = 5
STEP = re.compile(r"^Step (\d+)/(\d+): ")
LOCATION = re.compile(r"\b(\w+) (s3://[^\s,]+)")
SQL_BYTES = re.compile(r"dumped database \S+ to \S+ \((\d+) bytes gzipped, (\d+) SQL bytes")


# --- the tenant's data ---------------------------------------------------------------------


def tenant_login(obj: dict[str, Any]) -> dict[str, Any]:
    """The tenant's own MySQL login, from its Secrets Manager secret (as WordPress reads it)."""
    arn = obj["status"]["resources"]["dbSecretArn"]
    value = boto3.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
    login: dict[str, Any] = json.loads(value)
    return login


POSTS_DDL = """
CREATE TABLE IF NOT EXISTS wp_posts (
  ID BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  post_author BIGINT UNSIGNED NOT NULL DEFAULT 0,
  post_date DATETIME NOT NULL,
  post_content LONGTEXT NOT NULL,
  post_title TEXT NOT NULL,
  post_excerpt TEXT NOT NULL,
  post_status VARCHAR(20) NOT NULL DEFAULT 'publish',
  post_name VARCHAR(200) NOT NULL DEFAULT '',
  post_type VARCHAR(20) NOT NULL DEFAULT 'post',
  KEY type_status_date (post_type, post_status, post_date, ID),
  KEY post_name (post_name(191))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
"""
META_DDL = """
CREATE TABLE IF NOT EXISTS wp_postmeta (
  meta_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  post_id BIGINT UNSIGNED NOT NULL DEFAULT 0,
  meta_key VARCHAR(255) DEFAULT NULL,
  meta_value LONGTEXT,
  KEY post_id (post_id),
  KEY meta_key (meta_key(191))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
"""
INSERT_POST = (
    "INSERT INTO wp_posts (ID, post_author, post_date, post_content, post_title, "
    "post_excerpt, post_status, post_name, post_type) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
INSERT_META = "INSERT INTO wp_postmeta (post_id, meta_key, meta_value) VALUES (%s, %s, %s)"


class Text:
    """Random text of two kinds: words (compresses well) and base64 (barely compresses)."""

    def __init__(self, seed: int = 42) -> None:
        self.rng = random.Random(seed)  # noqa: S311 (reproducible test data)
        letters = "etaoinshrdlcumwfgypbvkjxqz"
        weights = [12, 9, 8, 8, 7, 7, 6, 6, 6, 4, 4, 3, 3, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1]
        self.vocab = [
            "".join(self.rng.choices(letters, weights, k=self.rng.randint(2, 11)))
            for _ in range(5000)
        ]

    def words(self, size: int) -> str:
        """About `size` characters of paragraphs of random words."""
        words = self.rng.choices(self.vocab, k=max(1, size // 6))
        paragraphs = (" ".join(words[i : i + 80]) for i in range(0, len(words), 80))
        return "\n".join(f"<p>{p.capitalize()}.</p>" for p in paragraphs)[:size]

    @staticmethod
    def base64(size: int) -> str:
        """About `size` characters of an inline image: random base64."""
        data = base64.b64encode(os.urandom(size * 3 // 4)).decode()
        return f'<img src="data:image/jpeg;base64,{data}" />'


@dataclass
class Posts:
    """What the fill wrote so far."""

    posts: int = 0
    meta: int = 0
    raw_bytes: int = 0


def post_rows(text: Text, first_id: int, budget: int) -> Iterator[tuple[Any, list[Any], int]]:
    """(post row, its meta rows, raw bytes) until about `budget` raw bytes were produced."""
    rng = text.rng
    made = 0
    post_id = first_id
    while made < budget:
        size = rng.randint(*POST_BODY)
        body = text.words(size) if post_id % 2 == 0 else text.base64(size)
        title = text.words(rng.randint(20, 80)).removeprefix("<p>").removesuffix(".</p>")
        excerpt = text.words(rng.randint(100, 300))
        date = f"20{rng.randint(15, 25)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} " \
               f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00"
        slug = f"post-{post_id}-{'-'.join(title.split()[:5])}"[:200]
        post = (post_id, rng.randint(1, 20), date, body, title, excerpt, "publish", slug, "post")
        width, height = rng.choice([(1920, 1080), (1200, 800), (800, 600), (4032, 3024)])
        meta = [
            (post_id, "_edit_lock", f"{rng.randint(1_500_000_000, 1_800_000_000)}:1"),
            (post_id, "_thumbnail_id", str(rng.randint(1, 100_000))),
            (post_id, "_wp_attached_file", f"2024/{rng.randint(1, 12):02d}/img-{post_id}.jpg"),
            (post_id, "_wp_attachment_metadata",
             f'a:5:{{s:5:"width";i:{width};s:6:"height";i:{height};s:4:"file";'
             f's:{len(slug) + 4}:"{slug}.jpg";s:8:"filesize";i:{rng.randint(10**5, 5 * 10**6)};'
             f's:5:"sizes";a:0:{{}}}}'),
        ]
        size_of = len(body) + len(title) + len(excerpt) + len(slug) + 60 + sum(
            len(m[1]) + len(m[2]) + 16 for m in meta
        )
        made += size_of
        post_id += 1
        yield post, meta, size_of


def database_size(cur: Any, database: str) -> int:
    """data_length + index_length of the database's tables, after fresh statistics."""
    cur.execute("ANALYZE TABLE wp_posts, wp_postmeta")
    cur.fetchall()
    cur.execute(
        "SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables "
        "WHERE table_schema = %s", (database,),
    )
    (size,) = cur.fetchone()
    return int(size)


def fill_database(login: dict[str, Any], target: int) -> tuple[int, Posts]:
    """Insert posts and meta until the tables hold about `target` bytes; their actual size."""
    # Over TLS, verified against the platform's CA: the tenant's user REQUIRE SSL.
    conn = pymysql.connect(host=login["host"], port=int(login["port"]), user=login["username"],
                           password=login["password"], database=login["dbname"],
                           charset="utf8mb4", autocommit=False,
                           ssl_ca=os.environ["WPENV_DB_CA_BUNDLE"], ssl_verify_identity=True)
    text = Text()
    done = Posts()
    with conn, conn.cursor() as cur:
        cur.execute(POSTS_DDL)
        cur.execute(META_DDL)
        size = 0
        # InnoDB stores a value in more than its length (pages, off-page columns, indexes):
        # the first round writes part of the target, later ones aim from what it gave.
        budget = int(target * 0.6)
        for _ in range(FILL_ROUNDS):
            posts: list[Any] = []
            meta: list[Any] = []
            batch = 0
            for post, rows, raw in post_rows(text, done.posts + 1, budget):
                posts.append(post)
                meta.extend(rows)
                batch += raw
                done.posts += 1
                done.meta += len(rows)
                done.raw_bytes += raw
                if batch >= BATCH_BYTES:
                    cur.executemany(INSERT_POST, posts)
                    cur.executemany(INSERT_META, meta)
                    conn.commit()
                    posts, meta, batch = [], [], 0
            if posts:
                cur.executemany(INSERT_POST, posts)
                cur.executemany(INSERT_META, meta)
                conn.commit()
            size = database_size(cur, login["dbname"])
            conn.commit()
            if size >= target * 0.97:
                break
            per_raw = size / max(done.raw_bytes, 1)
            budget = max(int((target - size) / per_raw), BATCH_BYTES // 4)
    return size, done


@dataclass
class Files:
    """What the fill wrote to the tenant's directory."""

    uploads: int = 0
    small: int = 0
    apparent: int = 0
    allocated: int = 0


def directory_size(root: Path) -> tuple[int, int, int]:
    """(files, apparent bytes, allocated bytes as du counts them) under `root`."""
    files = apparent = allocated = 0
    for directory, _, names in os.walk(root):
        for name in names:
            st = os.lstat(os.path.join(directory, name))
            files += 1
            apparent += st.st_size
            allocated += st.st_blocks * 512
    return files, apparent, allocated


def fill_files(root: Path, target: int) -> Files:
    """Uploads of mixed sizes (random bytes) and small text files, owned like the root."""
    rng = random.Random(7)  # noqa: S311 (reproducible test data)
    text = Text(seed=11)
    owner = root.stat()
    done = Files()
    written = 0

    def write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.chown(path, owner.st_uid, owner.st_gid)

    for i in range(SMALL_FILES):
        kind = rng.choice(["plugins", "themes"])
        ext = rng.choice([".php", ".css", ".js", ".txt"])
        path = root / "wp-content" / kind / f"pkg{i % 12}" / f"file{i}{ext}"
        data = text.words(rng.randint(*SMALL_FILE_SIZE)).encode()
        write(path, data)
        written += len(data)
        done.small += 1
    while target - written >= UPLOAD_SIZE[0]:
        size = min(rng.randint(*UPLOAD_SIZE), target - written)
        month = rng.randint(1, 12)
        path = root / "wp-content" / "uploads" / "2024" / f"{month:02d}" / f"img-{done.uploads}.jpg"
        write(path, os.urandom(size))
        written += size
        done.uploads += 1
    for directory, subdirectories, _ in os.walk(root):
        for name in subdirectories:
            os.chown(os.path.join(directory, name), owner.st_uid, owner.st_gid)
    _, done.apparent, done.allocated = directory_size(root)
    return done


# --- memory --------------------------------------------------------------------------------


def read_status(pid: int) -> dict[str, str]:
    """/proc/<pid>/status as a dict ({} once the process is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as status:
            lines = status.read().splitlines()
    except OSError:
        return {}
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def kib(value: str | None) -> int:
    """'123 kB' -> 123 (0 when absent: a zombie or a kernel thread has no VmRSS)."""
    return int(value.split()[0]) if value else 0


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, found by scanning /proc for PPid (no /proc/.../children
    on kernels without CONFIG_PROC_CHILDREN)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                raw = stat.read()
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may hold spaces and parentheses.
        fields = raw[raw.rfind(b")") + 2 :].split()
        parents.setdefault(int(fields[1]), []).append(int(entry))
    found: list[int] = []
    pending = [pid]
    while pending:
        children = parents.get(pending.pop(), [])
        found.extend(children)
        pending.extend(children)
    return found


@dataclass
class Sample:
    """One reading: when, the operator's RSS, and its children's (KiB)."""

    at: float
    rss: int
    children: dict[int, tuple[str, int]]

    @property
    def children_rss(self) -> int:
        return sum(rss for _, rss in self.children.values())


@dataclass
class Sampler:
    """Reads the operator's and its children's VmRSS every SAMPLE_SECONDS in a thread."""

    pid: int
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def read(self) -> Sample:
        rss = kib(read_status(self.pid).get("VmRSS"))
        children = {}
        for child in descendants(self.pid):
            status = read_status(child)
            if status:
                children[child] = (status.get("Name", "?"), kib(status.get("VmRSS")))
        return Sample(time.monotonic(), rss, children)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(self.read())
            self._stop.wait(SAMPLE_SECONDS)

    def window(self, start: float, end: float) -> list[Sample]:
        return [s for s in list(self.samples) if start <= s.at <= end]


def reset_peak(pid: int) -> bool:
    """Reset the kernel's VmHWM of `pid` to its current RSS (Linux >= 4.0, needs root)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


# --- what kubectl and S3 say ---------------------------------------------------------------


class Cluster:
    """kubectl in the benchmark's namespace."""

    def __init__(self, env: dict[str, str], namespace: str) -> None:
        self.env = env
        self.ns = namespace

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True,
                timeout: float = 60) -> Any:
        return kube.kubectl(*args, "-n", self.ns, env=self.env, stdin=stdin, check=check,
                            timeout=timeout)

    def get(self, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = json.loads(self.kubectl("get", "wpenv", name, "-o", "json").stdout)
        return obj

    def gone(self, name: str) -> bool:
        result = self.kubectl("get", "wpenv", name, "-o", "name", check=False)
        return result.returncode != 0 and "NotFound" in result.stderr

    def events(self, name: str) -> list[dict[str, Any]]:
        out = self.kubectl("get", "events", "--field-selector",
                           f"involvedObject.name={name}", "-o", "json").stdout
        items: list[dict[str, Any]] = json.loads(out)["items"]
        return sorted(items, key=lambda e: event_time(e)[0] or datetime.min)


def event_time(event: dict[str, Any]) -> tuple[datetime | None, bool]:
    """When an Event was posted, and whether to better than a second (MicroTime)."""
    raw = event.get("eventTime")
    precise = bool(raw) and "." in str(raw)
    raw = raw or event.get("lastTimestamp") or event.get("firstTimestamp")
    if not raw:
        return None, False
    return datetime.fromisoformat(str(raw).replace("Z", "+00:00")).replace(tzinfo=None), precise


def step_times(events: list[dict[str, Any]]) -> tuple[list[tuple[str, float]] | None, int]:
    """Seconds per step of the last attempt (each step's Event marks its end), or None when
    the Events' times are only whole seconds; and the number of attempts."""
    marks: list[tuple[str, datetime]] = []
    attempts = 0
    precise_times = True
    for event in events:
        when, precise = event_time(event)
        precise_times = precise_times and precise
        if when is None:
            continue
        message = str(event.get("message", ""))
        step = STEP.match(message)
        if message.startswith("Deprovisioning started"):
            marks, attempts = [("start", when)], 1
        elif attempts and event.get("type") == "Warning":
            # The attempt failed; the next one starts after kopf's backoff.
            marks, attempts = [("retry", when)], attempts + 1
        elif step and event.get("reason") == "Deprovisioning":
            marks.append((f"step {step[1]}/{step[2]}: {message[step.end():]}", when))
    if not precise_times or len(marks) < 2:
        return None, attempts
    steps = [(label, (when - marks[i][1]).total_seconds())
             for i, (label, when) in enumerate(marks[1:])]
    if marks[0][0] == "retry":
        label, took = steps[0]
        steps[0] = (f"{label} [from the last failure: includes the backoff]", took)
    return steps, attempts


def archive_objects(bucket_hint: str, final_message: str, namespace: str) -> dict[str, Any]:
    """The manifest and the HeadObject size of each artefact it lists, and of itself."""
    s3 = boto3.client("s3")
    locations = dict(LOCATION.findall(final_message))
    uri = locations.get("manifest")
    if uri:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
    else:  # find it: the one manifest under the environment's prefix
        bucket = bucket_hint
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"archives/{namespace}/{NAME}/")
        keys = [o["Key"] for o in listed.get("Contents", []) if o["Key"].endswith("manifest.json")]
        if not keys:
            return {}
        key = keys[-1]
    manifest: dict[str, Any] = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    sizes: dict[str, int] = {}
    for part in ("database", "files", "users"):
        entry = manifest.get(part) or {}
        if entry.get("key"):
            head = s3.head_object(Bucket=bucket, Key=entry["key"])
            sizes[entry["key"].rsplit("/", 1)[-1]] = int(head["ContentLength"])
    sizes["manifest.json"] = int(s3.head_object(Bucket=bucket, Key=key)["ContentLength"])
    return {"manifest": manifest, "sizes": sizes, "uri": f"s3://{bucket}/{key}"}


# --- the run ---------------------------------------------------------------------------------


def mb(n: float) -> str:
    return f"{n / MB:,.1f} MB"


def mib_kib(kib_: float) -> str:
    return f"{kib_ / 1024:,.1f} MiB"


def provision(cluster: Cluster) -> dict[str, Any]:
    tenant = f"bd{uuid.uuid4().hex[:8]}"
    body = {"apiVersion": "bbws.io/v1alpha1", "kind": "WordPressEnvironment",
            "metadata": {"name": NAME}, "spec": {"tenantId": tenant}}
    started = time.monotonic()
    cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(body))
    cluster.kubectl("wait", f"wpenv/{NAME}", "--for=condition=Ready",
                    f"--timeout={READY_TIMEOUT}s", timeout=READY_TIMEOUT + 10)
    print(f"environment {cluster.ns}/{NAME} (tenant {tenant}) Ready in "
          f"{time.monotonic() - started:.1f}s", flush=True)
    return cluster.get(NAME)


def fill(obj: dict[str, Any], db_target: int, files_target: int) -> tuple[int, Files]:
    started = time.monotonic()
    db_size, posts = fill_database(tenant_login(obj), db_target)
    print(f"database filled in {time.monotonic() - started:.1f}s: {posts.posts} posts, "
          f"{posts.meta} meta rows, {mb(posts.raw_bytes)} of values; "
          f"tables {mb(db_size)} (data_length + index_length)", flush=True)
    tenant = obj["spec"]["tenantId"]
    root = Path(os.environ["WPENV_EFS_MOUNT_PATH"]) / "tenants" / tenant
    root.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    files = fill_files(root, files_target)
    print(f"files written in {time.monotonic() - started:.1f}s: {files.uploads} uploads, "
          f"{files.small} small text files, {mb(files.apparent)} apparent, "
          f"{mb(files.allocated)} on disk (du)", flush=True)
    return db_size, files


def deprovision(cluster: Cluster, sampler: Sampler) -> tuple[float, float, float]:
    """Delete and wait until the object is gone: (start, end, seconds)."""
    seen = {str(event["metadata"]["uid"]) for event in cluster.events(NAME)}
    started = time.monotonic()
    cluster.kubectl("delete", "wpenv", NAME, "--wait=false")
    last_progress = started
    while not cluster.gone(NAME):
        now = time.monotonic()
        if now - started > DEPROVISION_TIMEOUT:
            raise SystemExit(f"{NAME} still exists after {DEPROVISION_TIMEOUT:.0f}s")
        if now - last_progress >= PROGRESS_SECONDS:
            last_progress = now
            rss = sampler.samples[-1].rss if sampler.samples else 0
            for event in cluster.events(NAME):
                uid = str(event["metadata"]["uid"])
                if uid not in seen:
                    seen.add(uid)
                    print(f"  [{now - started:6.1f}s] {event.get('type')} "
                          f"{event.get('reason')}: {str(event.get('message'))[:150]}",
                          flush=True)
            print(f"  [{now - started:6.1f}s] operator RSS {mib_kib(rss)}", flush=True)
        time.sleep(GONE_POLL_SECONDS)
    ended = time.monotonic()
    return started, ended, ended - started


def final_event(cluster: Cluster) -> tuple[list[dict[str, Any]], str]:
    """The Events, once the Deprovisioned one was posted (kopf posts them in the background)."""
    deadline = time.monotonic() + 30
    while True:
        events = cluster.events(NAME)
        final = [e for e in events if e.get("reason") == "Deprovisioned"]
        if final or time.monotonic() > deadline:
            return events, str(final[-1]["message"]) if final else ""
        time.sleep(0.5)


def sql_size(log_path: Path) -> int | None:
    """Uncompressed SQL bytes of the dump, from the operator's log line, if it is there."""
    try:
        found = SQL_BYTES.findall(log_path.read_text(errors="replace"))
    except OSError:
        return None
    return int(found[-1][1]) if found else None


def report(
    *, db_size: int, files: Files, seconds: float, baseline: int, window: list[Sample],
    hwm: int | None, after: int, events: list[dict[str, Any]], final: str,
    archive: dict[str, Any], sql: int | None,
) -> None:
    peak = max([s.rss for s in window], default=baseline)
    children_peak = max([s.children_rss for s in window], default=0)
    by_program: dict[str, int] = {}
    for sample in window:
        for name, rss in sample.children.values():
            by_program[name] = max(by_program.get(name, 0), rss)
    print()
    print("=== deprovisioning one environment ===")
    print(f"database (data_length + index_length)   {mb(db_size)}")
    print(f"files (du, apparent / on disk)          {mb(files.apparent)} / {mb(files.allocated)}"
          f" in {files.uploads + files.small} files")
    verdict = "within" if seconds < HLD_TARGET_SECONDS else "OVER"
    print(f"deprovision wall time (delete -> gone)  {seconds:.1f}s "
          f"({verdict} the HLD target of {HLD_TARGET_SECONDS / 60:.0f} minutes)")
    if final:
        print(f"  Deprovisioned Event                   {final.partition(';')[0]}")
    print(f"operator RSS baseline (before delete)   {mib_kib(baseline)}")
    print(f"operator RSS peak (50 ms samples)       {mib_kib(peak)}"
          f"   ({len(window)} samples)")
    if hwm is not None:
        print(f"operator VmHWM during deprovisioning    {mib_kib(hwm)} (kernel high-water mark)")
    print(f"operator peak extra (peak - baseline)   {mib_kib(max(peak, hwm or 0) - baseline)}")
    print(f"operator RSS after                      {mib_kib(after)}")
    print(f"children peak RSS (sum, 50 ms samples)  {mib_kib(children_peak)}")
    for name, rss in sorted(by_program.items()):
        print(f"  {name:<37} {mib_kib(rss)}")
    sizes: dict[str, int] = archive.get("sizes", {})
    if sizes:
        print(f"archive {archive['uri'].rsplit('/', 1)[0]}/")
        for name in ("database.sql.gz", "files.tar.gz", "users.json", "manifest.json"):
            if name in sizes:
                print(f"  {name:<37} {sizes[name]:>14,} bytes ({mb(sizes[name])})")
        dump, tar = sizes.get("database.sql.gz"), sizes.get("files.tar.gz")
        print("compression")
        if dump:
            line = f"  database: tables / dump              {db_size / dump:.2f}x"
            if sql:
                line += f"  (SQL text {mb(sql)} / dump: {sql / dump:.2f}x)"
            print(line)
        if tar:
            print(f"  files: apparent / tar.gz              {files.apparent / tar:.3f}x")
        if dump and tar:
            print(f"  together                              "
                  f"{(db_size + files.apparent) / (dump + tar):.2f}x")
    else:
        print("archive: no manifest found")
    steps, attempts = step_times(events)
    if attempts > 1:
        print(f"attempts                                {attempts} ({attempts - 1} failed and "
              "were retried; times below are the last attempt's)")
    if steps is None:
        print("per-step times: skipped (Event times have whole-second resolution)")
    else:
        print("per-step times (from the Events' eventTime; each step's Event marks its end)")
        for label, took in steps:
            print(f"  {took:7.2f}s  {label[:110]}")
    for event in events:
        if event.get("type") == "Warning":
            when, _ = event_time(event)
            print(f"WARNING Event at {when:%H:%M:%S} {event.get('reason')}: "
                  f"{event.get('message')}")


def main() -> None:
    """Bring a private platform and operator up, fill, delete, measure, tear both down."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--db-mb", type=float, default=100.0,
                        help="table data to write to the tenant's database (MB)")
    parser.add_argument("--files-mb", type=float, default=500.0,
                        help="files to write to the tenant's directory (MB)")
    args = parser.parse_args()
    with private_platform(PORTS, LOCAL) as env:
        cluster = Cluster(env, new_namespace(env))
        log_path = LOCAL / "operator.log"
        log_path.unlink(missing_ok=True)
        with running_operator(env, log_path, OPERATOR_HEALTH_PORT) as proc:
            obj = provision(cluster)
            db_size, files = fill(obj, int(args.db_mb * MB), int(args.files_mb * MB))

            sampler = Sampler(proc.pid)
            sampler.start()
            try:
                time.sleep(3)  # the operator idle, and a few samples of it
                baseline = sampler.read().rss
                hwm_reset = reset_peak(proc.pid)
                start, end, seconds = deprovision(cluster, sampler)
                time.sleep(1)  # the last samples, and any child that is still exiting
                hwm = kib(read_status(proc.pid).get("VmHWM")) if hwm_reset else None
                after = sampler.read().rss
            finally:
                sampler.stop()
            window = sampler.window(start, end + 1)

            events, final = final_event(cluster)
            bucket = os.environ.get("WPENV_ARCHIVE_BUCKET", "")
            archive = archive_objects(bucket, final, cluster.ns)
            report(db_size=db_size, files=files, seconds=seconds, baseline=baseline,
                   window=window, hwm=hwm, after=after, events=events, final=final,
                   archive=archive, sql=sql_size(log_path))
            if window:
                rss = [s.rss for s in window]
                print("(operator RSS during deprovisioning: "
                      f"median {mib_kib(statistics.median(rss))})")

if __name__ == "__main__":
    main()
