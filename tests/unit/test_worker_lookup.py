"""Finding the handler of a phase: plug-ins through real entry points, then the built-ins.

The plug-ins are real distributions: a `*.dist-info` directory with an `entry_points.txt`
on `sys.path`, which `importlib.metadata` finds the same way as an installed package.
"""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from collectionflow.domain.results import PhaseOutcome
from collectionflow.worker.context import PhaseContext
from collectionflow.worker.lookup import ENTRY_POINT_GROUP, HandlerLookupError, find_handler
from collectionflow.worker.phases import BUILT_IN_PHASES

pytestmark = pytest.mark.unit

PLUGIN_SOURCE = textwrap.dedent(
    """
    from collectionflow.worker.context import PhaseContext
    from collectionflow.domain.results import PhaseResult

    NOT_CALLABLE = 42

    def custom(ctx: PhaseContext) -> PhaseResult:
        return ctx.succeeded({"plugin": ctx.phase}, "done by the plug-in", "synthesis")
    """
)

InstallPlugin = Callable[[dict[str, str]], str]


def write_distribution(directory: Path, module: str, entry_points: dict[str, str]) -> None:
    """Module `module` and a distribution of the same name declaring `entry_points`.

    In `entry_points` values, MODULE stands for the module's name.
    """
    (directory / f"{module}.py").write_text(PLUGIN_SOURCE)
    # The name before the first "-" of a .dist-info directory is the distribution's name.
    info = directory / f"{module}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
    lines = [f"[{ENTRY_POINT_GROUP}]"]
    lines += [f"{name} = {value.replace('MODULE', module)}" for name, value in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture
def install_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InstallPlugin]:
    """Put a distribution with the given entry points on sys.path; returns its module name."""
    modules: list[str] = []

    def install(entry_points: dict[str, str]) -> str:
        module = f"cf_test_phases_{uuid.uuid4().hex[:8]}"
        directory = tmp_path / module
        directory.mkdir()
        write_distribution(directory, module, entry_points)
        monkeypatch.syspath_prepend(str(directory))
        modules.append(module)
        return module

    yield install
    for module in modules:
        sys.modules.pop(module, None)


def context(phase: str) -> PhaseContext:
    return PhaseContext(
        namespace="ns",
        flow_name="flow",
        flow_uid="uid",
        flow_type="collection",
        phase=phase,
        attempt=1,
        parameters={"assets": [{"name": "a"}]},
        previous_outputs={},
        manual_input=None,
        heartbeat_lease=None,
        heartbeat_seconds=10.0,
    )


@pytest.mark.parametrize("phase", list(BUILT_IN_PHASES))
def test_built_ins_serve_the_collection_flow_type(phase: str) -> None:
    assert find_handler("collection", phase) is BUILT_IN_PHASES[phase]


def test_an_unknown_phase_is_an_error_that_says_what_exists() -> None:
    with pytest.raises(HandlerLookupError) as raised:
        find_handler("collection", "teleportation")
    message = str(raised.value)
    assert "'teleportation'" in message
    assert ENTRY_POINT_GROUP in message
    assert "gap_analysis" in message


def test_built_ins_do_not_serve_other_flow_types() -> None:
    with pytest.raises(HandlerLookupError, match="flow type 'other'"):
        find_handler("other", "gap_analysis")


def test_a_plugin_adds_a_phase(install_plugin: InstallPlugin) -> None:
    module = install_plugin({"enrichment": "MODULE:custom"})
    handler = find_handler("collection", "enrichment")
    assert handler.__module__ == module
    result = handler(context("enrichment"))
    assert result.state is PhaseOutcome.SUCCEEDED
    assert result.outputs == {"plugin": "enrichment"}


def test_a_plugin_wins_over_the_built_in(install_plugin: InstallPlugin) -> None:
    install_plugin({"gap_analysis": "MODULE:custom"})
    handler = find_handler("collection", "gap_analysis")
    assert handler is not BUILT_IN_PHASES["gap_analysis"]
    assert handler(context("gap_analysis")).agent_decision == "done by the plug-in"


def test_a_plugin_serves_any_flow_type(install_plugin: InstallPlugin) -> None:
    install_plugin({"enrichment": "MODULE:custom"})
    assert find_handler("other", "enrichment")(context("enrichment")).outputs == {
        "plugin": "enrichment"
    }


def test_two_plugins_claiming_a_phase_is_an_error(install_plugin: InstallPlugin) -> None:
    first = install_plugin({"enrichment": "MODULE:custom"})
    second = install_plugin({"enrichment": "MODULE:custom"})
    with pytest.raises(HandlerLookupError, match="several entry points") as raised:
        find_handler("collection", "enrichment")
    assert first in str(raised.value)
    assert second in str(raised.value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("cf_no_such_module:handler", "does not load: ModuleNotFoundError"),
        ("MODULE:missing", "does not load: AttributeError"),
        ("MODULE:NOT_CALLABLE", "is a int, not a callable"),
    ],
)
def test_a_broken_plugin_is_an_error(
    install_plugin: InstallPlugin, value: str, message: str
) -> None:
    install_plugin({"enrichment": value})
    with pytest.raises(HandlerLookupError, match=message):
        find_handler("collection", "enrichment")
