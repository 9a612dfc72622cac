"""`collectionflow input` checks the answers with the operator's own limits before it writes
them, so a user hears what is wrong at once instead of from an InputRejected Event."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from collectionflow.cli.flows import answers_from

pytestmark = pytest.mark.unit


def test_answers_from_settings_are_per_asset_and_attribute() -> None:
    assert answers_from(None, ["db-01.owner=dba", "db-01.count=3", "web-01.tier=gold"]) == {
        "answers": {"db-01": {"owner": "dba", "count": 3}, "web-01": {"tier": "gold"}}
    }


@pytest.mark.parametrize(
    "content",
    [
        pytest.param('{"db-01": {"owner": "dba"}}', id="answers-alone"),
        pytest.param('{"answers": {"db-01": {"owner": "dba"}}}', id="under-answers"),
    ],
)
def test_a_file_holds_the_answers_alone_or_under_answers(tmp_path: Path, content: str) -> None:
    answers = tmp_path / "answers.json"
    answers.write_text(content)
    assert answers_from(answers, ["db-01.tier=gold"]) == {
        "answers": {"db-01": {"owner": "dba", "tier": "gold"}}
    }


@pytest.mark.parametrize("setting", ["owner=dba", "db-01.owner", ".owner=dba", "db-01.=x"])
def test_a_setting_without_asset_and_attribute_is_refused(
    capsys: pytest.CaptureFixture[str], setting: str
) -> None:
    with pytest.raises(typer.Exit):
        answers_from(None, [setting])
    assert "expected asset.attribute=value" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "says"),
    [
        pytest.param("[" * 5000 + "]" * 5000, "nested 5000 deep; the limit is 32", id="deep"),
        pytest.param('{"a": "' + "x" * 70_000 + '"}', "the limit is 65536", id="large"),
        pytest.param("[1, 2]", "must be a JSON object, not an array", id="array"),
        pytest.param("{oops", "is not JSON", id="broken"),
        pytest.param('{"db-01": "dba"}', "answers are", id="not-per-asset"),
    ],
)
def test_a_file_over_the_limits_is_refused_saying_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, says: str
) -> None:
    answers = tmp_path / "answers.json"
    answers.write_text(content)
    with pytest.raises(typer.Exit):
        answers_from(answers, [])
    assert says in capsys.readouterr().err
