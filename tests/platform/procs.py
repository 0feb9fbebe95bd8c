"""Process helpers shared by the local platform's components.

Services are started detached (own session, output to a log file, pid in a pid file) so they
outlive the ``up`` command that started them; a later ``up`` or ``down``, possibly in another
Python process, finds them again through the pid file alone. See CONTRACT.md.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "StartupError",
    "is_alive",
    "log_tail",
    "port_open",
    "read_pid",
    "require_port_free",
    "running_pid",
    "start_detached",
    "stop",
    "url_ok",
    "wait_for",
    "wait_for_port",
    "wait_for_url",
]

# Children started by this Python process, kept so that we can reap them (a dead child stays
# a zombie, which still "exists" for kill(pid, 0), until its parent waits for it).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class StartupError(RuntimeError):
    """A service did not become ready; the message carries the tail of its log."""


def read_pid(pid_file: Path) -> int | None:
    """Return the pid recorded in ``pid_file``, or None if it is missing or garbled."""
    try:
        text = pid_file.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def _is_zombie(pid: int) -> bool:
    """True if ``pid`` has exited but was not reaped (Linux only; False elsewhere)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state follows the parenthesised command name, which may itself contain ')'.
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def _cmdline_name(pid: int) -> str | None:
    """Basename of the process's argv[0], or None when /proc cannot tell us."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    argv0 = raw.split(b"\0", 1)[0].decode(errors="replace")
    return os.path.basename(argv0) if argv0 else None


def is_alive(pid: int, name: str | None = None) -> bool:
    """True if ``pid`` runs (not a zombie) and, when ``name`` is given, runs that program.

    The name check guards against a stale pid file whose pid was reused by an unrelated
    process (after a reboot, say): we must neither reuse nor kill such a process.
    """
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        del _CHILDREN[pid]
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    if _is_zombie(pid):
        return False
    if name is not None:
        actual = _cmdline_name(pid)
        if actual is not None and actual != name:
            return False
    return True


def running_pid(pid_file: Path, name: str | None = None) -> int | None:
    """The pid from ``pid_file`` if that process is alive (see :func:`is_alive`), else None."""
    pid = read_pid(pid_file)
    if pid is None or not is_alive(pid, name):
        return None
    return pid


def start_detached(
    argv: Sequence[str],
    *,
    pid_file: Path,
    log_file: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    **identity: Any,
) -> int:
    """Start ``argv`` in its own session with output appended to ``log_file``; return its pid.

    ``identity`` (Popen's ``user``, ``group``, ``extra_groups``) runs it as another user.

    Its own session means Ctrl-C in the terminal that ran ``up`` does not reach it and it
    survives the exit of this Python process. The pid is written to ``pid_file`` atomically.
    """
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        log.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting: {' '.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            **identity,
        )
    _CHILDREN[proc.pid] = proc
    tmp = pid_file.with_name(pid_file.name + ".tmp")
    tmp.write_text(f"{proc.pid}\n")
    tmp.replace(pid_file)
    return proc.pid


def _wait_gone(pid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``pid`` to exit; True if it did."""
    deadline = time.monotonic() + timeout
    while is_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _signal(pid: int, sig: signal.Signals) -> None:
    """Signal the process group ``pid`` leads (as :func:`start_detached` arranges), else pid."""
    with contextlib.suppress(ProcessLookupError):
        try:
            is_leader = os.getpgid(pid) == pid
        except ProcessLookupError:
            return
        if is_leader:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


def stop(pid_file: Path, *, name: str | None = None, grace: float = 5.0) -> None:
    """Stop the process in ``pid_file``: SIGTERM, SIGKILL after ``grace`` s; wait; remove file.

    A missing pid file, or one naming a dead or foreign process (see ``name``), is not an
    error: ``down`` on nothing must succeed.
    """
    pid = running_pid(pid_file, name)
    if pid is not None:
        _signal(pid, signal.SIGTERM)
        if not _wait_gone(pid, grace):
            _signal(pid, signal.SIGKILL)
            if not _wait_gone(pid, 10.0):
                raise RuntimeError(f"process {pid} ({pid_file.name}) survived SIGKILL")
        # Whatever it left behind in its process group (helpers, forked workers) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)


def log_tail(log_file: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of ``log_file`` (for error messages); empty if it is missing."""
    try:
        data = log_file.read_bytes()[-64 * 1024 :]
    except FileNotFoundError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])


def wait_for(
    check: Callable[[], bool],
    *,
    what: str,
    timeout: float,
    pid: int | None = None,
    log_file: Path | None = None,
    interval: float = 0.2,
) -> None:
    """Poll ``check`` until it returns True; raise :class:`StartupError` on timeout.

    With ``pid``, give up as soon as that process dies instead of waiting out the timeout,
    and put the tail of ``log_file`` in the error so the cause is visible at once.
    """
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        problem = None
        if pid is not None and not is_alive(pid):
            problem = f"{what}: process {pid} exited before it was ready"
        elif time.monotonic() >= deadline:
            problem = f"{what}: not ready after {timeout:.0f} s"
        if problem is not None:
            if log_file is not None:
                problem += f"\n--- last lines of {log_file} ---\n{log_tail(log_file)}"
            raise StartupError(problem)
        time.sleep(interval)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_port_free(host: str, port: int, what: str) -> None:
    """Fail early and clearly when a port we are about to bind is taken by someone else."""
    if port_open(host, port):
        raise StartupError(f"{what}: {host}:{port} is already in use by another process")


def wait_for_port(
    host: str,
    port: int,
    *,
    what: str,
    timeout: float = 30.0,
    pid: int | None = None,
    log_file: Path | None = None,
) -> None:
    """Wait until ``host:port`` accepts connections (see :func:`wait_for`)."""
    wait_for(
        lambda: port_open(host, port),
        what=what,
        timeout=timeout,
        pid=pid,
        log_file=log_file,
    )


def url_ok(
    url: str,
    *,
    ssl_context: ssl.SSLContext | None = None,
    expect: str | None = None,
    timeout: float = 2.0,
) -> bool:
    """True if GET ``url`` answers 200 (and, with ``expect``, its body contains that text)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=ssl_context) as resp:
            body: bytes = resp.read()
            return resp.status == 200 and (
                expect is None or expect in body.decode(errors="replace")
            )
    except (OSError, urllib.error.URLError, ssl.SSLError):
        return False


def wait_for_url(
    url: str,
    *,
    what: str,
    timeout: float = 30.0,
    ssl_context: ssl.SSLContext | None = None,
    expect: str | None = None,
    pid: int | None = None,
    log_file: Path | None = None,
) -> None:
    """Wait until :func:`url_ok` holds for ``url`` (see :func:`wait_for`)."""
    wait_for(
        lambda: url_ok(url, ssl_context=ssl_context, expect=expect),
        what=what,
        timeout=timeout,
        pid=pid,
        log_file=log_file,
    )
