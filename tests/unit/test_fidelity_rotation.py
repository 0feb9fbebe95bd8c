"""The platform's rotation function, the parts that need no database: passwords, labels."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from tests.platform.fidelity import rotation


def _secret(**versions: list[str]) -> Any:
    return SimpleNamespace(
        arn="arn:aws:secretsmanager:us-east-1:111122223333:secret:wpenv/acme/database-AbCdEf",
        default_version_id="v1", secret_string=None,
        versions={vid: {"version_id": vid, "version_stages": list(stages),
                        "secret_string": json.dumps({"username": "wp_acme", "password": vid})}
                  for vid, stages in versions.items()},
    )


def test_passwords_are_what_the_template_asks_getrandompassword_for() -> None:
    words = {rotation.random_password() for _ in range(50)}
    assert len(words) == 50
    for word in words:
        assert len(word) == 32 and not set(word) & set(rotation.EXCLUDED)
        assert any(c.isdigit() for c in word) and any(c.isupper() for c in word)
        assert any(c in rotation.PUNCTUATION for c in word) and " " not in word


def test_finish_moves_current_to_the_new_version_and_previous_to_the_old() -> None:
    secret = _secret(v0=["AWSPREVIOUS"], v1=["AWSCURRENT"], v2=["AWSPENDING"])
    rotation._finish_step(secret, "v2")
    stages = {vid: v["version_stages"] for vid, v in secret.versions.items()}
    assert stages == {"v0": [], "v1": ["AWSPREVIOUS"], "v2": ["AWSCURRENT"]}
    assert secret.default_version_id == "v2"
    assert rotation.staged(secret, "AWSCURRENT") == ("v2", {"username": "wp_acme",
                                                           "password": "v2"})


def test_a_pending_version_other_than_current_is_a_rotation_in_progress() -> None:
    assert rotation.stranded_pending(_secret(v1=["AWSCURRENT"], v2=["AWSPENDING"])) == "v2"
    assert rotation.stranded_pending(_secret(v1=["AWSCURRENT", "AWSPENDING"])) is None
    assert rotation.stranded_pending(_secret(v1=["AWSCURRENT"])) is None
