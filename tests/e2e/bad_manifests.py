"""Manifests the API server must refuse, each with the field its refusal must name.

Data for tests/e2e/test_bad_input.py, one `Case` per manifest, grouped by the issue's
categories. Each manifest carries `MARK` (a tenant id unique to the test session, or a
value derived from it) wherever a valid value is needed, so a test can search the
operator's log for it: a refused manifest never reaches the operator, so the mark never
shows there.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from wpenv.api.models import MAX_NAME_LENGTH

MARK = f"bad{uuid.uuid4().hex[:8]}"

WRONG_TYPE = "wrong type"
MISSING = "missing field"
OUT_OF_RANGE = "out of range"
IDENTIFIER = "invalid AWS or MySQL identifier"
METACHARACTERS = "SQL or shell metacharacters"
OVERSIZED = "oversized"
OVERLAP = "overlapping route"
IMMUTABLE = "immutable field changed"


@dataclass(frozen=True)
class Case:
    """One bad manifest: its id (and object name), category, body, and the text its refusal
    must hold (the field's path, and where it matters the rule's words)."""

    id: str
    category: str
    body: dict[str, Any]
    refusal: str

    @property
    def name(self) -> str:
        """metadata.name: the body's own when it sets one, else `bad-<id>`."""
        return str(self.body["metadata"]["name"])


def body(name: str, spec: Any, **metadata: Any) -> dict[str, Any]:
    """A WordPressEnvironment with this spec (`...` leaves the spec out)."""
    doc: dict[str, Any] = {
        "apiVersion": "bbws.io/v1alpha1",
        "kind": "WordPressEnvironment",
        "metadata": {"name": name, **metadata},
    }
    if spec is not ...:
        doc["spec"] = spec
    return doc


def case(id_: str, category: str, refusal: str, **spec: Any) -> Case:
    """A case whose spec is MARK's tenant id plus `spec` (which may override tenantId)."""
    return Case(id_, category, body(f"bad-{id_}", {"tenantId": MARK, **spec}), refusal)


def _identity(**fields: Any) -> dict[str, Any]:
    return {"identity": fields}


def _routing(**fields: Any) -> dict[str, Any]:
    return {"routing": fields}


def _image(id_: str, image: str, category: str = METACHARACTERS) -> Case:
    """An image refusal: the field, the value, and the CRD's own message."""
    refusal = f'spec.image: Invalid value: "{image}": image must be an OCI image reference'
    return case(id_, category, refusal, image=image)


def _too_long(id_: str, field: str, limit: int, **spec: Any) -> Case:
    """A string over its maxLength: the API server's own words, naming the field."""
    return case(id_, OVERSIZED, f"{field}: Too long: may not be more than {limit}", **spec)


WRONG_TYPES = [
    case("replicas-string", WRONG_TYPE, "spec.replicas", replicas="two"),
    case("cpu-string", WRONG_TYPE, "spec.cpu", cpu="512"),
    case("memory-float", WRONG_TYPE, "spec.memory", memory=1024.5),
    case("suspended-string", WRONG_TYPE, "spec.suspended", suspended="yes"),
    case("tenant-number", WRONG_TYPE, "spec.tenantId", tenantId=42),
    case("routing-string", WRONG_TYPE, "spec.routing", routing="/acme"),
    case("autoscaling-list", WRONG_TYPE, "spec.autoscaling", autoscaling=[2, 4]),
    case("groups-string", WRONG_TYPE, "spec.identity.groups", **_identity(groups="Admin")),
    case("callback-number", WRONG_TYPE, "spec.identity.callbackUrls[0]",
         **_identity(callbackUrls=[42])),
    case("enabled-string", WRONG_TYPE, "spec.identity.enabled", **_identity(enabled="true")),
    Case("spec-list", WRONG_TYPE, body("bad-spec-list", [MARK]), "spec"),
    case("unknown-field", WRONG_TYPE, 'unknown field "spec.replica"', replica=2),
]

MISSING_FIELDS = [
    Case("missing-tenant", MISSING, body("bad-missing-tenant", {"replicas": 2}),
         "spec.tenantId: Required value"),
    Case("missing-spec", MISSING, body("bad-missing-spec", ...), "spec: Required value"),
    case("empty-tenant", MISSING, "spec.tenantId", tenantId=""),
    case("empty-image", MISSING, "spec.image", image=""),
    case("empty-group", MISSING, "spec.identity.groups[0]", **_identity(groups=[""])),
]

OUT_OF_RANGE_NUMBERS = [
    case("negative-replicas", OUT_OF_RANGE, "spec.replicas", replicas=-1),
    case("too-many-replicas", OUT_OF_RANGE, "spec.replicas", replicas=11),
    case("memory-too-small", OUT_OF_RANGE, "spec.memory", memory=256),
    case("memory-too-large", OUT_OF_RANGE, "spec.memory", memory=200_000),
    case("cpu-not-offered", OUT_OF_RANGE, "spec.cpu", cpu=300),
    case("fargate-pair", OUT_OF_RANGE, "spec.memory: Invalid value",
         cpu=256, memory=4096),
    case("min-replicas-zero", OUT_OF_RANGE, "spec.autoscaling.minReplicas", replicas=2,
         autoscaling={"minReplicas": 0, "maxReplicas": 4}),
    case("max-replicas-eleven", OUT_OF_RANGE, "spec.autoscaling.maxReplicas", replicas=2,
         autoscaling={"minReplicas": 2, "maxReplicas": 11}),
    case("target-cpu-low", OUT_OF_RANGE, "spec.autoscaling.targetCpuUtilization",
         autoscaling={"targetCpuUtilization": 5}),
    case("target-cpu-high", OUT_OF_RANGE, "spec.autoscaling.targetCpuUtilization",
         autoscaling={"targetCpuUtilization": 95}),
    case("min-over-max", OUT_OF_RANGE, "spec.autoscaling.minReplicas", replicas=3,
         autoscaling={"minReplicas": 5, "maxReplicas": 3}),
    case("outside-bounds", OUT_OF_RANGE, "spec.replicas", replicas=1,
         autoscaling={"minReplicas": 2, "maxReplicas": 4}),
    case("deletion-policy", OUT_OF_RANGE, "spec.deletionPolicy", deletionPolicy="Keep"),
]

IDENTIFIERS = [
    case("tenant-underscore", IDENTIFIER, "spec.tenantId", tenantId="acme_corp"),
    case("tenant-uppercase", IDENTIFIER, "spec.tenantId", tenantId="Acme"),
    case("tenant-leading-hyphen", IDENTIFIER, "spec.tenantId", tenantId="-acme"),
    case("tenant-trailing-hyphen", IDENTIFIER, "spec.tenantId", tenantId="acme-"),
    case("tenant-dot", IDENTIFIER, "spec.tenantId", tenantId="acme.corp"),
    case("tenant-space", IDENTIFIER, "spec.tenantId", tenantId="ac me"),
    case("tenant-unicode", IDENTIFIER, "spec.tenantId", tenantId="acmé"),
    case("group-space", IDENTIFIER, "spec.identity.groups[0]",
         **_identity(groups=["Site Admins"])),
    case("group-leading-dot", IDENTIFIER, "spec.identity.groups[0]",
         **_identity(groups=[".admin"])),
    _image("image-uppercase", "Wordpress:6", IDENTIFIER),
    _image("image-empty-tag", "wp:", IDENTIFIER),
    case("host-long-label", IDENTIFIER, "spec.routing.host",
         **_routing(host="a" * 64 + ".example.com")),
    case("host-numeric-tld", IDENTIFIER, "spec.routing.host", **_routing(host="10.0.0.1")),
    case("callback-plain-http", IDENTIFIER, "spec.identity.callbackUrls[0]",
         **_identity(callbackUrls=["http://acme.example.com/cb"])),
    case("logout-fragment", IDENTIFIER, "spec.identity.logoutUrls[0]",
         **_identity(logoutUrls=["https://acme.example.com/#bye"])),
    Case("name-not-a-dns-name", IDENTIFIER, body("Bad_Name", {"tenantId": MARK}),
         "metadata.name: Invalid value"),
]

# Shell and SQL metacharacters, put into every string field of the spec. `&` is not among
# them for URLs, where it separates query parameters (and the operator percent-encodes a
# URL before it goes anywhere).
SQL = "x'; DROP TABLE wp_users; --"
SHELL = ["$(id)", "`id`", "a|b", "a;b", "a>b"]
STRING_FIELDS: dict[str, tuple[str, Any]] = {
    # field path -> (the path the refusal names, how a value goes into the spec)
    "tenantId": ("spec.tenantId", lambda v: {"tenantId": v}),
    "routing.pathPrefix": ("spec.routing.pathPrefix", lambda v: _routing(pathPrefix=f"/{v}")),
    "routing.host": ("spec.routing.host", lambda v: _routing(host=f"{v}.example.com")),
    "identity.callbackUrls": ("spec.identity.callbackUrls[0]",
                              lambda v: _identity(callbackUrls=[f"https://a.example/{v}"])),
    "identity.logoutUrls": ("spec.identity.logoutUrls[0]",
                            lambda v: _identity(logoutUrls=[f"https://a.example/{v}"])),
    "identity.groups": ("spec.identity.groups[0]", lambda v: _identity(groups=[v])),
    "deletionPolicy": ("spec.deletionPolicy", lambda v: {"deletionPolicy": v}),
}


def _metacharacter_cases() -> list[Case]:
    cases = []
    for field, (path, spec) in STRING_FIELDS.items():
        slug = field.replace(".", "-").lower()
        for number, payload in enumerate([SQL, *SHELL, "a&&b", "a\nb"]):
            if payload == "a&&b" and "Urls" in field:
                continue
            cases.append(case(f"{slug}-meta{number}", METACHARACTERS, path, **spec(payload)))
    cases += [_image("image-sql", SQL), _image("image-shell", "wp;rm -rf /"),
              _image("image-substitution", "$(x)"), _image("image-backtick", "wp`id`"),
              _image("image-pipe", "wp|sh"), _image("image-space", "wp 6")]
    cases.append(Case("name-shell", METACHARACTERS, body("bad;rm", {"tenantId": MARK}),
                      "metadata.name: Invalid value"))
    return cases


OVERSIZED_VALUES = [
    case("tenant-too-long", OVERSIZED, "spec.tenantId", tenantId="a" * 33),
    _too_long("image-too-long", "spec.image", 255, image="a" * 256),
    case("prefix-too-long", OVERSIZED, "spec.routing.pathPrefix",
         **_routing(pathPrefix="/" + "a" * 64)),
    case("host-too-long", OVERSIZED, "spec.routing.host",
         **_routing(host=".".join(["a" * 60] * 2) + ".example.com")),
    case("callback-too-long", OVERSIZED, "spec.identity.callbackUrls[0]",
         **_identity(callbackUrls=["https://a.example/" + "a" * 1010])),
    case("too-many-callbacks", OVERSIZED, "spec.identity.callbackUrls: Too many",
         **_identity(callbackUrls=[f"https://a.example/{n}" for n in range(21)])),
    case("too-many-logouts", OVERSIZED, "spec.identity.logoutUrls: Too many",
         **_identity(logoutUrls=[f"https://a.example/{n}" for n in range(21)])),
    case("too-many-groups", OVERSIZED, "spec.identity.groups: Too many",
         **_identity(groups=[f"g{n}" for n in range(26)])),
    case("group-too-long", OVERSIZED, "spec.identity.groups[0]",
         **_identity(groups=["g" * 129])),
    Case("name-too-long", OVERSIZED, body("n" * (MAX_NAME_LENGTH + 1), {"tenantId": MARK}),
         f"metadata.name must be at most {MAX_NAME_LENGTH} characters"),
]

OVERLAPPING_ROUTES = [
    case("prefix-root", OVERLAP, "spec.routing.pathPrefix", **_routing(pathPrefix="/")),
    case("prefix-no-slash", OVERLAP, "spec.routing.pathPrefix",
         **_routing(pathPrefix="no-slash")),
    case("prefix-trailing-slash", OVERLAP, "spec.routing.pathPrefix",
         **_routing(pathPrefix="/acme/")),
    case("prefix-double-slash", OVERLAP, "spec.routing.pathPrefix",
         **_routing(pathPrefix="//acme")),
    case("prefix-wildcard", OVERLAP, "spec.routing.pathPrefix", **_routing(pathPrefix="/a*")),
    case("prefix-one-character-wildcard", OVERLAP, "spec.routing.pathPrefix",
         **_routing(pathPrefix="/acm?")),
    case("prefix-dot-segment", OVERLAP, "spec.routing.pathPrefix",
         **_routing(pathPrefix="/acme/../other")),
    case("host-wildcard", OVERLAP, "spec.routing.host", **_routing(host="*.example.com")),
    case("host-uppercase", OVERLAP, "spec.routing.host", **_routing(host="Acme.example.com")),
    case("host-trailing-dot", OVERLAP, "spec.routing.host",
         **_routing(host="acme.example.com.")),
    case("duplicate-callbacks", OVERLAP, "spec.identity.callbackUrls[1]: Duplicate value",
         **_identity(callbackUrls=["https://a.example/cb"] * 2)),
    case("duplicate-logouts", OVERLAP, "spec.identity.logoutUrls[1]: Duplicate value",
         **_identity(logoutUrls=["https://a.example/"] * 2)),
    case("duplicate-groups", OVERLAP, "spec.identity.groups[1]: Duplicate value",
         **_identity(groups=["Admin", "Admin"])),
]

CASES: list[Case] = [
    *WRONG_TYPES, *MISSING_FIELDS, *OUT_OF_RANGE_NUMBERS, *IDENTIFIERS,
    *_metacharacter_cases(), *OVERSIZED_VALUES, *OVERLAPPING_ROUTES,
]

# Changes to an existing object, as JSON merge patches (None deletes the field), with the
# text each refusal must hold. The object is made by the test with tenantId MARK.
CHANGED_TENANT = f"{MARK}x"
IMMUTABLE_CHANGES: list[tuple[str, dict[str, Any], str]] = [
    ("tenant-changed", {"tenantId": CHANGED_TENANT}, "tenantId is immutable"),
    ("tenant-removed", {"tenantId": None}, "spec.tenantId: Required value"),
    ("tenant-changed-and-invalid", {"tenantId": "Not Valid"}, "spec.tenantId"),
]
