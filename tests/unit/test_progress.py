"""Progress: a 0-100 integer and "done/total", counting skipped phases as passed."""

from __future__ import annotations

import datetime as dt

import pytest

from collectionflow.api.models import CollectionFlowSpec, CollectionFlowStatus
from collectionflow.domain.decision import FlowView, JobObservation, JobState
from collectionflow.domain.machine import decide
from collectionflow.domain.progress import Progress, progress_after, progress_succeeded
from collectionflow.domain.registry import COLLECTION, FlowDefinition, PhaseDefinition, UnknownPhase
from collectionflow.domain.results import PhaseOutcome, PhaseResult

pytestmark = pytest.mark.unit

NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
THREE = FlowDefinition("three", tuple(PhaseDefinition(n) for n in ("a", "b", "c")))


@pytest.mark.parametrize(
    ("completed", "expected"),
    [
        (None, Progress(0, "0/7")),
        ("initialization", Progress(14, "1/7")),
        ("platform_detection", Progress(28, "2/7")),
        ("automated_collection", Progress(42, "3/7")),
        ("gap_analysis", Progress(57, "4/7")),
        ("questionnaire_generation", Progress(71, "5/7")),
        ("manual_collection", Progress(85, "6/7")),
    ],
)
def test_progress_after_each_phase(completed: str | None, expected: Progress) -> None:
    assert progress_after(COLLECTION, completed) == expected


def test_only_a_succeeded_flow_shows_100() -> None:
    assert progress_after(COLLECTION, "synthesis") == Progress(99, "7/7")
    assert progress_succeeded(COLLECTION) == Progress(100, "7/7")


def test_progress_of_another_flow_type() -> None:
    assert [progress_after(THREE, n).percentage for n in (None, "a", "b", "c")] == [0, 33, 66, 99]
    assert progress_succeeded(THREE) == Progress(100, "3/3")


def test_unknown_phase_raises() -> None:
    with pytest.raises(UnknownPhase):
        progress_after(COLLECTION, "finalization")


def view(status: CollectionFlowStatus | None) -> FlowView:
    assert status is not None
    return FlowView("ns", "demo", "uid", 1, CollectionFlowSpec(), status)


def finish(flow: FlowView, next_phase: str | None) -> FlowView:
    """The flow after its current Job succeeded, its result naming `next_phase`."""
    assert flow.status.current_job is not None
    phase_result = PhaseResult(state=PhaseOutcome.SUCCEEDED, next_phase=next_phase)
    job = JobObservation(flow.status.current_job, JobState.SUCCEEDED, phase_result, exit_code=0)
    return view(decide(flow, job, NOW).status)


def test_phases_skipped_by_a_result_count_as_passed() -> None:
    flow = view(decide(view(CollectionFlowStatus()), None, NOW).status)
    flow = finish(flow, "gap_analysis")
    assert (flow.status.phase, flow.status.progress) == ("gap_analysis", "1/7")
    flow = finish(flow, None)
    assert (flow.status.phase, flow.status.progress) == ("questionnaire_generation", "4/7")
    assert flow.status.progress_percentage == 57
