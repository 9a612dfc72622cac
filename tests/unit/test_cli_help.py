"""The CLI explains itself: what it is for, the user's verbs before the operator's own, a
version, and help on every option of every command."""

from __future__ import annotations

import importlib.metadata

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

from collectionflow.cli import app

pytestmark = pytest.mark.unit
RUNNER = CliRunner()


def test_the_top_level_help_says_what_it_is_and_lists_the_users_verbs_first() -> None:
    shown = RUNNER.invoke(app, ["--help"], env={"COLUMNS": "120"})
    assert shown.exit_code == 0
    text = shown.output
    assert "Collection flows on Kubernetes" in text
    assert text.index("Flows") < text.index("Web view") < text.index("Running the operator")
    assert text.index(" get ") < text.index(" worker ") < text.index(" run ")


def test_version() -> None:
    shown = RUNNER.invoke(app, ["--version"])
    assert shown.exit_code == 0
    assert shown.output.strip() == (
        f"collectionflow {importlib.metadata.version('collectionflow-operator')}"
    )


def test_every_option_of_every_command_has_help() -> None:
    root = get_command(app)
    assert isinstance(root, typer.core.TyperGroup)
    missing = []
    pending = [(name, command) for name, command in root.commands.items()]
    while pending:
        name, command = pending.pop()
        if isinstance(command, typer.core.TyperGroup):
            pending += [(f"{name} {sub}", c) for sub, c in command.commands.items()]
            continue
        assert command.help, f"{name} has no description"
        for param in command.params:
            if param.param_type_name == "option" and not getattr(param, "help", None):
                missing.append(f"{name} {param.opts[0]}")
    assert missing == []


def test_input_shows_the_shape_of_the_answers() -> None:
    shown = RUNNER.invoke(app, ["input", "--help"], env={"COLUMNS": "120"})
    assert "--set db-01.owner=dba-team" in shown.output
    assert '{"db-01": {"owner": "dba-team"}}' in shown.output
