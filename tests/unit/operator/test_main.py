"""The entry point's scope: exact namespaces run kopf without namespace scanning."""

from __future__ import annotations

import pytest

from wpenv.operator.__main__ import kopf_settings, namespaces_of


def test_namespaces_are_split_and_trimmed() -> None:
    assert namespaces_of("") == []
    assert namespaces_of(" team-a, team-b ,,") == ["team-a", "team-b"]


@pytest.mark.parametrize(("value", "scanning"), [
    ("", True),  # the whole cluster: kopf watches CRDs as it always did
    ("team-a", False),
    ("team-a,team-b", False),
    ("team-*", True),
    ("!kube-system", True),
])
def test_only_patterns_need_namespaces_listed(value: str, scanning: bool) -> None:
    settings = kopf_settings(namespaces_of(value))
    assert settings.scanning.disabled is not scanning
