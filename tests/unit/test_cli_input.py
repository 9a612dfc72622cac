"""`collectionflow input` checks the answers with the operator's own limits before it writes
them, so a user hears what is wrong at once instead of from an InputRejected Event."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from collectionflow.cli.flows import answers_from

pytestmark = pytest.mark.unit


def test_answers_from_a_file_and_settings() -> None:
    assert answers_from(None, ["owner=dba", "count=3"]) == {"owner": "dba", "count": 3}


@pytest.mark.parametrize(
    ("content", "says"),
    [
        pytest.param("[" * 5000 + "]" * 5000, "nested 5000 deep; the limit is 32", id="deep"),
        pytest.param('{"a": "' + "x" * 70_000 + '"}', "the limit is 65536", id="large"),
        pytest.param("[1, 2]", "must be a JSON object, not an array", id="array"),
        pytest.param("{oops", "is not JSON", id="broken"),
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
