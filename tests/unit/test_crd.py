"""The CRD is generated from the API models, structural, and checked in without drift."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from collectionflow.api.base import ApiModel
from collectionflow.api.crd import custom_resource_definition, render_crd_yaml
from collectionflow.api.models import (
    CollectionFlowSpec,
    CollectionFlowStatus,
    PhaseOverride,
)

pytestmark = pytest.mark.unit

CHECKED_IN = Path(__file__).parents[2] / "crds" / "collectionflow.yaml"
FORBIDDEN_KEYS = ("$ref", "$defs", "anyOf", "oneOf", "allOf", "title")


@pytest.fixture(scope="module")
def crd() -> dict[str, Any]:
    return custom_resource_definition()


@pytest.fixture(scope="module")
def version(crd: dict[str, Any]) -> dict[str, Any]:
    [only] = crd["spec"]["versions"]
    assert isinstance(only, dict)
    return only


@pytest.fixture(scope="module")
def schema(version: dict[str, Any]) -> dict[str, Any]:
    root: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return root


def nodes(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema object in the tree, with its path."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from nodes(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from nodes(value, f"{path}[{index}]")


def test_checked_in_crd_matches_the_models() -> None:
    assert CHECKED_IN.read_text() == render_crd_yaml(), (
        "crds/collectionflow.yaml is out of date with collectionflow.api.models; "
        "run `.venv/bin/collectionflow crd > crds/collectionflow.yaml`"
    )


def test_rendered_yaml_parses_back(crd: dict[str, Any]) -> None:
    assert yaml.safe_load(render_crd_yaml()) == crd


def test_identity(crd: dict[str, Any], version: dict[str, Any]) -> None:
    assert crd["metadata"]["name"] == "collectionflows.flows.collectionflow.io"
    spec = crd["spec"]
    assert (spec["group"], spec["scope"]) == ("flows.collectionflow.io", "Namespaced")
    assert spec["names"]["kind"] == "CollectionFlow"
    assert spec["names"]["shortNames"] == ["cflow", "cflows"]
    assert spec["names"]["categories"] == ["flows"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}


def test_printer_columns(version: dict[str, Any]) -> None:
    columns = {c["name"]: c for c in version["additionalPrinterColumns"]}
    assert list(columns) == [
        "Phase",
        "Next",
        "Progress",
        "State",
        "Attempt",
        "Age",
        "ETA",
        "Message",
    ]
    assert columns["Progress"]["type"] == "integer"
    assert columns["Progress"]["jsonPath"] == ".status.progressPercentage"
    wide = {"ETA", "Message"}  # -o wide only
    assert all(columns[name]["priority"] == 1 for name in wide)
    assert all("priority" not in c for name, c in columns.items() if name not in wide)
    # A future time as kubectl's `date` type would print "<invalid>": the ETA is a string.
    assert columns["ETA"]["type"] == "string"
    assert columns["Age"] == {
        "name": "Age",
        "type": "date",
        "jsonPath": ".metadata.creationTimestamp",
    }


def test_printer_columns_point_at_status_fields(
    version: dict[str, Any], schema: dict[str, Any]
) -> None:
    status_fields = schema["properties"]["status"]["properties"]
    for column in version["additionalPrinterColumns"]:
        path = column["jsonPath"]
        if path.startswith(".status."):
            assert path.removeprefix(".status.") in status_fields, path


def test_schema_is_structural(schema: dict[str, Any]) -> None:
    for path, node in nodes(schema):
        for key in FORBIDDEN_KEYS:
            assert key not in node, f"{key} at {path}"
        assert node.get("additionalProperties") is not False, path
        if "properties" in node:
            assert node.get("type") == "object", path
            for name, sub in node["properties"].items():
                assert "type" in sub, f"no type at {path}.properties.{name}"
        assert "default" not in node or node["default"] is not None, path


@pytest.mark.parametrize("root", ["spec", "status"])
def test_roots_are_closed_objects(schema: dict[str, Any], root: str) -> None:
    node = schema["properties"][root]
    assert node["type"] == "object"
    assert "x-kubernetes-preserve-unknown-fields" not in node
    assert "additionalProperties" not in node


def test_only_parameters_are_free_form(schema: dict[str, Any]) -> None:
    free = [
        path for path, node in nodes(schema) if node.get("x-kubernetes-preserve-unknown-fields")
    ]
    assert free == [".properties.spec.properties.parameters"]


@pytest.mark.parametrize(
    ("model", "path"),
    [
        (CollectionFlowSpec, ("spec",)),
        (CollectionFlowStatus, ("status",)),
        (PhaseOverride, ("spec", "phases", "items")),
    ],
)
def test_every_model_field_is_in_the_schema(
    schema: dict[str, Any], model: type[ApiModel], path: tuple[str, ...]
) -> None:
    node = schema
    for step in path:
        node = node["items"] if step == "items" else node["properties"][step]
    aliases = {field.alias or name for name, field in model.model_fields.items()}
    assert aliases == set(node["properties"])


def test_enums_and_bounds_survive(schema: dict[str, Any]) -> None:
    spec = schema["properties"]["spec"]["properties"]
    status = schema["properties"]["status"]["properties"]
    assert {k: v for k, v in spec["recoveryPolicy"].items() if k != "description"} == {
        "enum": ["RetryPhase", "Fail"],
        "type": "string",
        "default": "RetryPhase",
    }
    assert status["state"]["enum"] == [
        "Pending",
        "Running",
        "WaitingForInput",
        "Suspended",
        "Succeeded",
        "Failed",
    ]
    assert status["progressPercentage"]["maximum"] == 100
    condition = status["conditions"]["items"]
    assert set(condition["required"]) >= {"type", "status", "reason", "lastTransitionTime"}
    assert condition["properties"]["lastTransitionTime"]["format"] == "date-time"


def test_every_field_of_spec_and_status_has_a_description(schema: dict[str, Any]) -> None:
    """`kubectl explain` says what each field does; none prints `<empty>`."""
    missing = [
        f"{path}.properties.{name}"
        for path, node in nodes(schema)
        for name, field in (node.get("properties") or {}).items()
        if path.startswith(".properties.s") and not field.get("description")
    ]
    assert missing == []


def test_lists_have_list_types(schema: dict[str, Any]) -> None:
    spec = schema["properties"]["spec"]["properties"]
    status = schema["properties"]["status"]["properties"]
    assert spec["phases"]["x-kubernetes-list-type"] == "map"
    assert spec["phases"]["x-kubernetes-list-map-keys"] == ["name"]
    assert status["conditions"]["x-kubernetes-list-map-keys"] == ["type"]
    assert status["phaseHistory"]["x-kubernetes-list-type"] == "atomic"
    untyped = [
        path
        for path, node in nodes(schema)
        if node.get("type") == "array" and "x-kubernetes-list-type" not in node
    ]
    assert untyped == []
