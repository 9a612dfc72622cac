"""docs/troubleshooting.md names every state, condition reason and Event reason the operator
writes, each with a meaning and an action: a new reason without a row fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from collectionflow.api.models import FlowState
from collectionflow.api.reasons import ConditionReason, EventReason

pytestmark = pytest.mark.unit

PAGE = Path(__file__).resolve().parents[2] / "docs" / "troubleshooting.md"


def rows(section: str) -> dict[str, list[str]]:
    """The rows of the table under `## section`, by their first cell."""
    text = PAGE.read_text().split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    found = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        match = re.fullmatch(r"`(\w+)`", cells[0]) if line.startswith("|") else None
        if match:
            found[match.group(1)] = cells[1:]
    return found


@pytest.mark.parametrize(
    ("section", "names"),
    [
        ("States", [s.value for s in FlowState]),
        ("Condition reasons", [r.value for r in ConditionReason]),
        ("Event reasons", [r.value for r in EventReason]),
    ],
)
def test_every_name_has_a_row_with_a_meaning_and_an_action(section: str, names: list[str]) -> None:
    table = rows(section)
    assert sorted(set(names) - set(table)) == [], f"missing from {section}"
    assert sorted(set(table) - set(names)) == [], f"rows in {section} the operator never writes"
    assert all(all(cells) for cells in table.values()), "every cell says something"
