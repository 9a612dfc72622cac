"""Generate the CollectionFlow CRD from the API models, so the schema has one source.

pydantic emits JSON Schema; a CRD needs a *structural* OpenAPI v3 schema: no `$ref`, no
`anyOf` with `null`, no `additionalProperties: false`, `type` on every node. This module
rewrites the one into the other. `crds/collectionflow.yaml` is this output, checked in, and a
unit test fails when the two drift apart (`collectionflow crd > crds/collectionflow.yaml`
refreshes it).
"""

from __future__ import annotations

from typing import Any

import yaml

from collectionflow.api.models import (
    CATEGORIES,
    GROUP,
    KIND,
    PLURAL,
    SHORT_NAMES,
    SINGULAR,
    VERSION,
    CollectionFlowSpec,
    CollectionFlowStatus,
)

# Dropped from pydantic's output: titles are noise, and `default: null` is not structural,
# and 1.20 apiservers read an empty-string default as null.
_DROPPED_KEYS = {"title"}
# Objects whose keys are free-form keep them: the one such field in the spec.
_FREE_FORM = {"x-kubernetes-preserve-unknown-fields": True, "type": "object"}

PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Next", "type": "string", "jsonPath": ".status.nextPhase"},
    {"name": "Progress", "type": "integer", "jsonPath": ".status.progressPercentage"},
    {"name": "State", "type": "string", "jsonPath": ".status.state"},
    {"name": "Attempt", "type": "integer", "jsonPath": ".status.attempt"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {"name": "ETA", "type": "string", "jsonPath": ".status.estimatedCompletionTime", "priority": 1},
    {"name": "Message", "type": "string", "jsonPath": ".status.message", "priority": 1},
]


def structural_schema(model: type[Any]) -> dict[str, Any]:
    """The model's JSON schema, rewritten as a structural OpenAPI v3 schema."""
    schema = model.model_json_schema(by_alias=True, mode="validation")
    definitions: dict[str, Any] = schema.pop("$defs", {})
    return _rewrite(schema, definitions)


def _rewrite(node: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        target = definitions[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _rewrite(merged, definitions)
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        if len(options) != 1:
            raise ValueError(f"cannot express a union as a structural schema: {node}")
        return _rewrite({**options[0], **rest}, definitions)

    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS or (key == "default" and value in (None, "", [], {})):
            continue
        if key == "properties":
            out[key] = {name: _rewrite(sub, definitions) for name, sub in value.items()}
        elif key == "items":
            out[key] = _rewrite(value, definitions)
        elif key == "additionalProperties":
            if isinstance(value, dict) and value:
                out[key] = _rewrite(value, definitions)
        elif key == "const":
            out["enum"] = [value]
        else:
            out[key] = value
    if (
        out.get("type") == "object"
        and "properties" not in out
        and "additionalProperties" not in out
    ):
        out.update(_FREE_FORM)
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    return out


def custom_resource_definition() -> dict[str, Any]:
    spec_schema = structural_schema(CollectionFlowSpec)
    status_schema = structural_schema(CollectionFlowStatus)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": list(SHORT_NAMES),
                "categories": list(CATEGORIES),
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "A multi-phase collection flow, each phase a Job.",
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                            "required": ["spec"],
                        }
                    },
                }
            ],
        },
    }


def render_crd_yaml() -> str:
    header = "# Generated from collectionflow.api.models by `collectionflow crd`. Do not edit.\n"
    return header + yaml.safe_dump(custom_resource_definition(), sort_keys=False, width=100)
