"""The example phase of docs/custom-phases.md (examples/custom-phase) runs through the
worker's own plug-in lookup, as its entry point declares, and keeps the phase contract."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

from collectionflow.domain.results import PhaseOutcome, PhaseResult
from collectionflow.worker.context import PhaseContext
from collectionflow.worker.lookup import ENTRY_POINT_GROUP, find_handler

pytestmark = pytest.mark.unit

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "custom-phase"


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The example as an installed distribution: its module and a dist-info with its entry
    points, on sys.path; returns the phase it claims."""
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    points = project["entry-points"][ENTRY_POINT_GROUP]
    (tmp_path / "cmdb_phase.py").write_text((EXAMPLE / "cmdb_phase.py").read_text())
    info = tmp_path / "cmdb_phase-1.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cmdb-phase\nVersion: 1.0.0\n")
    lines = [f"[{ENTRY_POINT_GROUP}]", *(f"{k} = {v}" for k, v in points.items())]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "cmdb_phase", raising=False)
    [phase] = points
    return str(phase)


def context(phase: str, **parameters: object) -> PhaseContext:
    return PhaseContext(
        namespace="team-a",
        flow_name="acme",
        flow_uid="6f1f2c84-9a53-4c1e-8d1e-3b8f0f4a9c21",
        flow_type="collection",
        phase=phase,
        attempt=1,
        parameters=dict(parameters),
    )


def test_the_example_plugin_replaces_the_built_in_phase(installed: str) -> None:
    handler = find_handler("collection", installed)
    assets = [{"name": "db-01", "platform": "postgres"}, {"name": "web-01"}]
    result = handler(context(installed, cmdb=assets))
    assert isinstance(result, PhaseResult)
    assert result.state is PhaseOutcome.SUCCEEDED
    assert result.outputs == {"assets": assets, "source": "cmdb"}
    assert result.next_phase == "gap_analysis", "the registry's successor"
    assert PhaseResult.model_validate_json(result.to_message()) == result


def test_the_example_fails_saying_why(installed: str) -> None:
    result = find_handler("collection", installed)(context(installed))
    assert result.state is PhaseOutcome.FAILED
    assert result.error == "parameters.cmdb must be a non-empty list of assets"
