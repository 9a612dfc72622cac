"""The inventory the built-in phases work on, from the flow's `parameters`: its assets and
the attributes each must have. Invalid data is an `InvalidPhaseData` naming where."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from collectionflow.api.contract import json_type_name

DEFAULT_REQUIRED_ATTRIBUTES = ("os", "cpu", "memoryGiB", "owner")
UNKNOWN_PLATFORM = "unknown"


class InvalidPhaseData(ValueError):
    """The parameters or the manual input cannot be worked on; the message says what to fix."""


@dataclass(frozen=True)
class Asset:
    name: str
    platform: str
    attributes: Mapping[str, Any]

    def knows(self, attribute: str) -> bool:
        return is_value(self.attributes.get(attribute))


def is_value(value: Any) -> bool:
    """Whether `value` makes an attribute known: anything but null and ""."""
    return value is not None and value != ""


@dataclass(frozen=True)
class Inventory:
    assets: tuple[Asset, ...]
    required: tuple[str, ...]

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any]) -> Inventory:
        return cls(_assets(parameters), _required_attributes(parameters))

    @property
    def names(self) -> set[str]:
        return {asset.name for asset in self.assets}

    @property
    def platforms(self) -> Counter[str]:
        """Assets per platform, in order of first appearance."""
        return Counter(asset.platform for asset in self.assets)

    @property
    def required_count(self) -> int:
        return len(self.assets) * len(self.required)

    def known(self) -> dict[str, list[str]]:
        """Per asset, the required attributes the inventory already has."""
        return {
            asset.name: [attribute for attribute in self.required if asset.knows(attribute)]
            for asset in self.assets
        }


def _assets(parameters: Mapping[str, Any]) -> tuple[Asset, ...]:
    if "assets" not in parameters:
        raise InvalidPhaseData("parameters.assets is missing: give a non-empty list of assets")
    raw = parameters["assets"]
    if not isinstance(raw, list):
        raise InvalidPhaseData(f"parameters.assets must be an array, got {json_type_name(raw)}")
    if not raw:
        raise InvalidPhaseData("parameters.assets is empty: give at least one asset")
    assets: list[Asset] = []
    first_index: dict[str, int] = {}
    for index, item in enumerate(raw):
        where = f"parameters.assets[{index}]"
        if not isinstance(item, dict):
            raise InvalidPhaseData(f"{where} must be an object, got {json_type_name(item)}")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            raise InvalidPhaseData(f"{where}.name must be a non-empty string")
        if name in first_index:
            raise InvalidPhaseData(
                f"{where}.name {name!r} is already the name of "
                f"parameters.assets[{first_index[name]}]: names must be unique"
            )
        first_index[name] = index
        platform = item.get("platform")
        if platform is not None and not isinstance(platform, str):
            raise InvalidPhaseData(
                f"{where}.platform must be a string, got {json_type_name(platform)}"
            )
        assets.append(Asset(name, platform or UNKNOWN_PLATFORM, item))
    return tuple(assets)


def _required_attributes(parameters: Mapping[str, Any]) -> tuple[str, ...]:
    raw = parameters.get("requiredAttributes")
    if raw is None:
        return DEFAULT_REQUIRED_ATTRIBUTES
    if (
        not isinstance(raw, list)
        or not raw
        or not all(isinstance(attribute, str) and attribute.strip() for attribute in raw)
    ):
        raise InvalidPhaseData(
            "parameters.requiredAttributes must be a non-empty array of attribute names"
        )
    if len(set(raw)) != len(raw):
        raise InvalidPhaseData("parameters.requiredAttributes names an attribute twice")
    return tuple(raw)
