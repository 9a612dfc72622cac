"""The docs test's `helm`: `--set` read as Helm reads it, durations, and the flags the docs
use."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from harness.helm_cli import SetError, parser, seconds, values_of

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("sets", "values"),
    [
        (["image.repository=r/x"], {"image": {"repository": "r/x"}}),
        (["a=1,b.c=true"], {"a": 1, "b": {"c": True}}),
        (["watchNamespaces={team-a,team-b}"], {"watchNamespaces": ["team-a", "team-b"]}),
        (["x={}"], {"x": []}),
        (["n=null", "s=007"], {"n": None, "s": "007"}),
        (["k=a\\,b"], {"k": "a,b"}),
        (["a\\.b=1"], {"a.b": 1}),
        (["a.b=1", "a.c=2", "a.b=3"], {"a": {"b": 3, "c": 2}}),
    ],
)
def test_set_is_read_as_helm_reads_it(sets: list[str], values: dict[str, Any]) -> None:
    assert values_of(sets) == values


@pytest.mark.parametrize("bad", ["novalue", "=1", "a..b=1"])
def test_a_set_helm_refuses_is_refused(bad: str) -> None:
    with pytest.raises(SetError):
        values_of([bad])


def test_durations() -> None:
    assert [seconds(d) for d in ("5m", "90s", "1h30m")] == [300, 90, 5400]
    with pytest.raises(argparse.ArgumentTypeError):
        seconds("soon")


def test_the_docs_flags_parse_and_others_are_refused() -> None:
    args = parser().parse_args(
        ["install", "cf", "charts/x", "-n", "ns", "--wait", "--timeout", "5m", "--set", "a=1"]
    )
    assert (args.command, args.release, args.namespace, args.wait, args.timeout) == (
        "install",
        "cf",
        "ns",
        True,
        300,
    )
    with pytest.raises(SystemExit):
        parser().parse_args(["install", "cf", "charts/x", "--atomic"])
