"""The operator image as its Dockerfile defines it, read with dockerfile-parse.

What the image runs is decided by its last stage only; these helpers read that stage, so
the tests check the instructions a container runtime would use.
"""

from __future__ import annotations

import json
from pathlib import Path

from dockerfile_parse import DockerfileParser

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"


def final_stage() -> list[tuple[str, str]]:
    """The instructions (name, value) of the Dockerfile's last stage: what the image runs."""
    structure = DockerfileParser(path=str(DOCKERFILE)).structure
    last_from = max(i for i, ins in enumerate(structure) if ins["instruction"] == "FROM")
    return [(ins["instruction"], ins["value"]) for ins in structure[last_from:]]


def exec_form(value: str) -> list[str]:
    """An instruction's JSON (exec) form; the shell form would add a shell to the image."""
    argv = json.loads(value)
    assert isinstance(argv, list) and all(isinstance(a, str) for a in argv), value
    return argv


def instruction(name: str) -> str | None:
    """The value of the last `name` instruction of the final stage (Docker uses the last)."""
    values = [value for kind, value in final_stage() if kind == name]
    return values[-1] if values else None


def image_command() -> list[str]:
    """ENTRYPOINT followed by CMD, as the container runtime joins them."""
    entrypoint, cmd = instruction("ENTRYPOINT"), instruction("CMD")
    argv = [*exec_form(entrypoint or "[]"), *exec_form(cmd or "[]")]
    assert argv, "the image has no command"
    return argv


def healthcheck_command() -> list[str]:
    """HEALTHCHECK's CMD, without its options."""
    value = instruction("HEALTHCHECK")
    assert value is not None, "the Dockerfile documents no health check"
    _, _, command = value.partition("CMD ")
    return exec_form(command)


def image_env() -> dict[str, str]:
    """The final stage's ENV, but PATH: here the interpreter is given by its path."""
    envs = DockerfileParser(path=str(DOCKERFILE)).envs
    return {name: value for name, value in envs.items() if name != "PATH"}
