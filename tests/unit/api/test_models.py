"""The pydantic models: defaults, constraints, and the Fargate size table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from wpenv.api.crd import openapi_schema
from wpenv.api.models import (
    FARGATE_SIZES,
    IMAGE_MESSAGE,
    IMAGE_REFERENCE,
    WordPressEnvironmentSpec,
    WordPressEnvironmentStatus,
    parse_spec,
)

SAMPLES = Path(__file__).resolve().parents[3] / "manifests" / "samples"


def test_defaults_fill_everything_but_tenant_id() -> None:
    spec = parse_spec({"tenantId": "acme"})
    assert spec.replicas == 2
    assert (spec.cpu, spec.memory) == (512, 1024)
    assert spec.identity.groups == ["Admin", "Editor", "Viewer"]
    assert spec.deletion_policy == "Delete"
    assert spec.routing.path_prefix == ""


def test_defaults_are_not_shared_between_instances() -> None:
    first = parse_spec({"tenantId": "a"})
    first.identity.groups.append("Extra")
    assert parse_spec({"tenantId": "b"}).identity.groups == ["Admin", "Editor", "Viewer"]


@pytest.mark.parametrize(
    "raw",
    [
        {},
        {"tenantId": "Acme"},
        {"tenantId": "a" * 33},
        {"tenantId": "acme", "replicas": -1},
        {"tenantId": "acme", "cpu": 300},
        {"tenantId": "acme", "deletionPolicy": "Keep"},
        {"tenantId": "acme", "unknownField": 1},
    ],
)
def test_invalid_specs_are_refused(raw: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        parse_spec(raw)


def test_every_sample_parses() -> None:
    samples = sorted(SAMPLES.glob("*.yaml"))
    assert samples
    for path in samples:
        parse_spec(yaml.safe_load(path.read_text())["spec"])


def test_fargate_table_matches_aws_documentation_edges() -> None:
    assert FARGATE_SIZES[256] == [512, 1024, 2048]
    assert FARGATE_SIZES[512][0] == 1024 and FARGATE_SIZES[512][-1] == 4096
    assert FARGATE_SIZES[4096][-1] == 30720


def test_status_round_trips_in_camel_case() -> None:
    status = WordPressEnvironmentStatus.model_validate(
        {"phase": "Active", "observedGeneration": 3, "readyReplicas": 2,
         "conditions": [{"type": "Ready", "status": "True"}]}
    )
    dumped = status.model_dump(by_alias=True, exclude_none=True)
    assert dumped["readyReplicas"] == 2
    assert dumped["conditions"][0]["type"] == "Ready"


def test_spec_model_refuses_extra_fields_in_python_too() -> None:
    with pytest.raises(ValidationError):
        WordPressEnvironmentSpec.model_validate({"tenantId": "a", "replica": 1})


DIGEST = "sha256:" + "0123456789abcdef" * 4
IMAGES_ACCEPTED = [
    "docker.io/library/wordpress:6.5-php8.2-apache",
    f"registry:5000/a/b@{DIGEST}",
    "123456789012.dkr.ecr.eu-west-1.amazonaws.com/wp:1",
    "wordpress",
    "wordpress:6.8-apache",
    f"wordpress:6.8@{DIGEST}",
    "localhost:5000/team/word_press__x.y--z:Latest_1",
    "Registry.Example.com/wp:v1",  # a domain may have capitals, a repository may not
    "[2001:db8::1]:5000/wp:1",
    "wp:" + "t" * 128,
]
IMAGES_REFUSED = [
    "Wordpress:6",
    "wp;rm -rf",
    "wp 6",
    "$(x)",
    "wp:",
    "wp:" + "t" * 129,
    "wp:-dash-first",
    "wp@sha256:abc",  # a digest's hex has 32 or more digits
    "wp/",
    "/wp",
    "wp_-x",
    "wp`id`",
    "wp|cat",
    "wp\n",
    "registry:5000/Team/wp",
]


@pytest.mark.parametrize("image", IMAGES_ACCEPTED)
def test_image_reference_grammar_accepts(image: str) -> None:
    assert re.fullmatch(IMAGE_REFERENCE, image)
    assert parse_spec({"tenantId": "a", "image": image}).image == image


@pytest.mark.parametrize("image", IMAGES_REFUSED)
def test_image_reference_grammar_refuses(image: str) -> None:
    assert not re.fullmatch(IMAGE_REFERENCE, image)
    with pytest.raises(ValidationError, match="image must be an OCI image reference"):
        parse_spec({"tenantId": "a", "image": image})


def test_the_crd_refuses_images_with_the_same_regex() -> None:
    rules = openapi_schema(WordPressEnvironmentSpec)["properties"]["image"][
        "x-kubernetes-validations"
    ]
    assert rules == [{"rule": f"self.matches(r'{IMAGE_REFERENCE}')",
                      "message": IMAGE_MESSAGE, "reason": "FieldValueInvalid"}]
    assert "'" not in IMAGE_REFERENCE, "the CEL string literal would end early"
