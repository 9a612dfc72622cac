"""Tables within the terminal: optional columns go first, messages wrap, names are never cut."""

from __future__ import annotations

import datetime as dt

import pytest

from collectionflow.cli.tables import Column, age, render

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
COLUMNS = [
    Column("NAME"),
    Column("NEXT", optional=True),
    Column("STATE"),
    Column("MESSAGE", wraps=True),
]


def test_a_table_that_fits_keeps_every_column() -> None:
    text = render(COLUMNS, [["a", "b", "Running", "ok"]], 80)
    assert text.splitlines()[0].split() == ["NAME", "NEXT", "STATE", "MESSAGE"]


def test_a_long_message_wraps_within_the_width_and_names_stay_whole() -> None:
    name = "assessment-for-the-eu-datacenter-migration-wave-3"
    message = "the phase failed: " + "a long explanation of what went wrong " * 4
    text = render(COLUMNS, [[name, "synthesis", "Failed", message]], 80)
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    assert name in lines[1]
    assert "NEXT" not in lines[0], "the optional column goes before the message wraps"
    assert " ".join(part.strip() for part in lines[1:]).count("went wrong") == 4


def test_names_wider_than_the_terminal_are_kept_whole() -> None:
    name = "x" * 90
    text = render([Column("NAME"), Column("STATE")], [[name, "Running"]], 80)
    assert name in text


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(5, "5s"), (119, "119s"), (600, "10m"), (3 * 3600, "3h"), (5 * 86400, "5d")],
)
def test_ages_read_like_kubectls(seconds: int, shown: str) -> None:
    moment = (NOW - dt.timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
    assert age(moment, NOW) == shown
    assert age(None, NOW) == "<unknown>"
