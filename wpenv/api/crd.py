"""Generate the WordPressEnvironment CRD from the pydantic models.

The models are the one place the schema is written; this module turns pydantic's JSON
Schema into a Kubernetes structural OpenAPI v3 schema (refs inlined, no titles, optional
fields as plain types) and adds what only a CRD has: subresources, printer columns, names.
`python -m wpenv.api.crd` rewrites `crds/`; a test fails when `crds/` is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from wpenv.api.models import (
    GROUP,
    KIND,
    NAME_RULE,
    PLURAL,
    SHORT_NAMES,
    SINGULAR,
    VERSION,
    WordPressEnvironmentSpec,
    WordPressEnvironmentStatus,
)

CRD_PATH = Path(__file__).resolve().parents[2] / "crds" / f"{PLURAL}.{GROUP}.yaml"

# Keywords a structural schema may carry; everything else pydantic emits is dropped.
_KEEP = {
    "type",
    "description",
    "default",
    "enum",
    "format",
    "pattern",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "required",
}

PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {
        "name": "Ready",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
    },
    {"name": "Replicas", "type": "integer", "jsonPath": ".status.replicas"},
    {"name": "URL", "type": "string", "jsonPath": ".status.url"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {"name": "Tenant", "type": "string", "jsonPath": ".spec.tenantId", "priority": 1},
    {"name": "Desired", "type": "integer", "jsonPath": ".spec.replicas", "priority": 1},
    {"name": "Queue", "type": "integer", "jsonPath": ".status.queuePosition", "priority": 1},
    {
        "name": "Reason",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].reason',
        "priority": 1,
    },
]


def _structural(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Inline refs and keep only what a structural schema allows, recursively."""
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _structural(merged, defs)
    if "anyOf" in node:
        # `X | None` in pydantic; Kubernetes expresses "optional" by leaving it out.
        branches = [b for b in node["anyOf"] if b.get("type") != "null"]
        if len(branches) != 1:
            raise ValueError(f"cannot express union in a structural schema: {node}")
        outer = {k: v for k, v in node.items() if k != "anyOf"}
        return _structural({**branches[0], **outer}, defs)

    out: dict[str, Any] = {k: v for k, v in node.items() if k in _KEEP}
    if out.get("default", "absent") is None:
        del out["default"]
    for key, value in node.items():
        if key.startswith("x-kubernetes-"):
            out[key] = value
    if "properties" in node:
        out["type"] = "object"
        out["properties"] = {
            name: _structural(child, defs) for name, child in node["properties"].items()
        }
    if "items" in node:
        out["items"] = _structural(node["items"], defs)
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = _structural(node["additionalProperties"], defs)
    if not out.get("required"):
        out.pop("required", None)
    return out


def openapi_schema(model: type[Any]) -> dict[str, Any]:
    """A model's schema in the form a CRD's openAPIV3Schema accepts."""
    raw = model.model_json_schema(by_alias=True)
    return _structural(raw, raw.get("$defs", {}))


def build_crd() -> dict[str, Any]:
    """The whole CustomResourceDefinition as a dict, ready to dump as YAML."""
    spec = openapi_schema(WordPressEnvironmentSpec)
    status = openapi_schema(WordPressEnvironmentStatus)
    schema = {
        "type": "object",
        "description": (
            "One customer organisation's dedicated WordPress environment on AWS: compute, "
            "storage, database, routing and identity, provisioned and retired by the "
            "wpenv-operator."
        ),
        "required": ["spec"],
        "x-kubernetes-validations": [NAME_RULE],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{PLURAL}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "wpenv-operator"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": SHORT_NAMES,
                "categories": ["all", "bbws"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                }
            ],
        },
    }


def render() -> str:
    """The CRD as the YAML text kept in `crds/`."""
    header = "# Generated by `python -m wpenv.api.crd` from wpenv/api/models.py. Do not edit.\n"
    body = yaml.safe_dump(build_crd(), sort_keys=False, width=100)
    return header + body


def write_or_check(path: Path, text: str, *, check: bool, command: str) -> int:
    """Write a generated file, or with `check` return 1 (and say so) when it is stale."""
    if check:
        current = path.read_text() if path.exists() else ""
        if current != text:
            print(f"{path} is stale: run `{command}`", file=sys.stderr)
            return 1
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Write the CRD, or with --check exit 1 when the file on disk is stale."""
    args = sys.argv[1:] if argv is None else argv
    return write_or_check(
        CRD_PATH, render(), check="--check" in args, command="python -m wpenv.api.crd"
    )


if __name__ == "__main__":
    raise SystemExit(main())
