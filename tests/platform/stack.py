"""Compose the platform's components and write the env file other tools source."""

from __future__ import annotations

import os
import shlex
import time
from pathlib import Path

from tests.platform import aws, controlplane, mariadb

REPO = Path(__file__).resolve().parents[2]
COMPONENTS = (mariadb, aws, controlplane)


def local_dir() -> Path:
    """Where the platform keeps its state: WPENV_LOCAL_DIR or <repo>/.local."""
    return Path(os.environ.get("WPENV_LOCAL_DIR", REPO / ".local")).resolve()


def up(local: Path) -> dict[str, str]:
    """Start (or reuse) every component and write `local/env`; return its variables."""
    local.mkdir(parents=True, exist_ok=True)
    env: dict[str, str] = {}
    for component in COMPONENTS:
        started = time.monotonic()
        env.update(component.up(local, dict(env)))
        name = component.__name__.rsplit(".", 1)[-1]
        print(f"  {name:<13} ready in {time.monotonic() - started:5.1f}s", flush=True)
    write_env(local / "env", env)
    return env


def down(local: Path) -> None:
    """Stop every component, last started first; harmless when nothing runs."""
    for component in reversed(COMPONENTS):
        component.down(local)
    (local / "env").unlink(missing_ok=True)


def write_env(path: Path, env: dict[str, str]) -> None:
    """`export K=V` lines, quoted for the shell; readable only by the owner (it has a password)."""
    lines = [f"export {key}={shlex.quote(value)}" for key, value in sorted(env.items())]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)


def read_env(path: Path) -> dict[str, str]:
    """Parse a file written by write_env."""
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export "):].partition("=")
            env[key] = shlex.split(value)[0] if value else ""
    return env
