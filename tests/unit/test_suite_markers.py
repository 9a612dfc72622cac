"""The suite refuses a test that `make test` would never select."""

from __future__ import annotations

import pytest

from harness.suite import unmarked

pytestmark = pytest.mark.unit


def test_a_test_without_a_kind_marker_is_named() -> None:
    tests = [("a", {"unit"}), ("b", {"parametrize"}), ("c", {"e2e", "timeout"}), ("d", set())]
    assert unmarked(tests) == ["b", "d"]
