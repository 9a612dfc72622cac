"""The suite refuses a test that `make test` would never select."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import unmarked

pytestmark = pytest.mark.unit


class Item:
    def __init__(self, nodeid: str, *markers: str) -> None:
        self.nodeid = nodeid
        self.markers = markers

    def get_closest_marker(self, name: str) -> Any:
        return name if name in self.markers else None


def test_a_test_without_a_kind_marker_is_named() -> None:
    items: list[Any] = [Item("a", "unit"), Item("b", "parametrize"), Item("c", "e2e"), Item("d")]
    assert unmarked(items) == ["b", "d"]
