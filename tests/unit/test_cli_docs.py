"""docs/cli.md is generated from the CLI itself (`make cli-docs`) and held fresh: a command or
option that changes without the page failing here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

PAGE = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_docs_cli_is_what_the_cli_says(tmp_path: Path) -> None:
    fresh = tmp_path / "cli.md"
    typer = Path(sys.executable).with_name("typer")
    subprocess.run(
        [
            str(typer),
            "collectionflow.cli",
            "utils",
            "docs",
            "--name",
            "collectionflow",
            "--title",
            "The collectionflow command",
            "--output",
            str(fresh),
        ],
        check=True,
        capture_output=True,
    )
    assert PAGE.read_text() == fresh.read_text(), "docs/cli.md is stale: run make cli-docs"
