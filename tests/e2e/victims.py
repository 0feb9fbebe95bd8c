"""Operator processes that die: at a named kill point (wpenv.crashpoints) or at random.

Each one is the real `python -m wpenv.operator` with the install's service account token
(its ClusterRole, nothing more), watching only the test's namespace (environments of other
tests would otherwise reach a kill point first). When one dies, its whole process group
goes with it, as a container's processes do: a dump client it had started does not
outlive it.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.platform import kube
from wpenv import crashpoints

REACHED = re.compile(re.escape(crashpoints.REACHED.split("{point}")[0]) + r"(\S+)")


@contextlib.contextmanager
def paused(operator: subprocess.Popen[bytes]) -> Iterator[None]:
    """The session's operator stopped (SIGSTOP): only the test's own operators work."""
    operator.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        operator.send_signal(signal.SIGCONT)


def _end(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group (a dead leader's children too) and reap the leader."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


@dataclass
class Victims:
    """Operators for one namespace, started one after the other on one pair of ports."""

    env: dict[str, str]
    namespace: str
    log: Path
    port: int

    @property
    def tmp(self) -> Path:
        """Their $TMPDIR: what a killed one leaves there stays with the test's state."""
        return self.log.with_suffix(".tmp")

    def _env(self, **extra: str) -> dict[str, str]:
        self.tmp.mkdir(mode=0o700, exist_ok=True)
        return {**self.env, "WPENV_NAMESPACES": self.namespace, "TMPDIR": str(self.tmp),
                **extra}

    def kill_at(self, point: str, timeout: float = 90) -> None:
        """Run an operator armed with `point` until it exits there; fail if it does not."""
        proc = kube.spawn_operator(self._env(**{crashpoints.SETTING: point}), self.log, self.port)
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            message = f"kill point {point} not reached in {timeout}s; see {self.log}"
            raise AssertionError(message) from None
        finally:
            _end(proc)
        assert code == crashpoints.EXIT_CODE, f"{point}: exit status {code}; see {self.log}"

    def kill_after(self, seconds: float) -> bool:
        """Start an operator and SIGKILL it after `seconds`; whether it was still running."""
        proc = kube.spawn_operator(self._env(), self.log, self.port)
        try:
            proc.wait(seconds)
        except subprocess.TimeoutExpired:
            return True
        finally:
            _end(proc)
        return False

    @contextlib.contextmanager
    def running(self) -> Iterator[subprocess.Popen[bytes]]:
        """An operator with no kill point, live for the block, then stopped."""
        proc = kube.start_operator(self._env(), self.log, self.port)
        try:
            yield proc
        finally:
            kube.stop_operator(proc)

    def reached(self) -> list[str]:
        """The kill points operators reached, in order, from what they wrote before dying."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return REACHED.findall(text)


def waited(check: Callable[[], object], timeout: float, what: str) -> None:
    """Poll `check()` until it holds; fail saying `what` did not happen."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)
