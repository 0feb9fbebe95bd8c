"""A real (moto) ELBv2 client that notes each operation, for tests that count AWS calls."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Elbv2:
    """A real (moto) ELBv2 client that notes every operation it is asked for."""

    client: Any
    calls: list[str] = field(default_factory=list)

    def __getattr__(self, name: str) -> Any:
        self.calls.append(name)
        return getattr(self.client, name)


@dataclass
class Clients:
    elbv2: Elbv2
