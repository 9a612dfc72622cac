"""The suite's own rules: every test carries one of the markers `make test` selects by."""

from __future__ import annotations

from collections.abc import Collection, Iterable

KINDS = ("unit", "db", "cluster", "chart", "e2e")


def unmarked(tests: Iterable[tuple[str, Collection[str]]]) -> list[str]:
    """Of (test id, its marker names), the tests that carry none of the suite's kinds."""
    return [nodeid for nodeid, markers in tests if not any(k in markers for k in KINDS)]
