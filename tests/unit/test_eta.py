"""The estimated completion time of a running flow, from its flow type's phase durations."""

from __future__ import annotations

import datetime as dt

import pytest

from collectionflow.api.models import CollectionFlowStatus, FlowState
from collectionflow.domain.eta import PhaseStats, estimated_completion, phase_stats
from collectionflow.domain.machine import decide
from collectionflow.domain.registry import COLLECTION
from unit.machine_flows import NOW, at, pending, then

pytestmark = pytest.mark.unit
EVERY = {phase: PhaseStats(60.0, 90.0, 5) for phase in COLLECTION.phase_names}


def test_stats_are_the_median_and_the_90th_percentile() -> None:
    stats = phase_stats({"a": [10, 20, 30, 40, 1000], "b": []})
    assert stats == {"a": PhaseStats(30, 1000, 5)}


def test_the_estimate_is_what_is_left_of_this_phase_plus_the_medians_after_it() -> None:
    flow = pending()
    flow = then(flow, decide(flow, None, NOW))  # initialization runs since NOW
    later = NOW + dt.timedelta(seconds=20)
    eta = estimated_completion(COLLECTION, flow.status, EVERY, later)
    # 40 s left of initialization, then five automatic phases of 60 s (the manual one is not
    # counted: no duration predicts a person's answer).
    assert eta == later + dt.timedelta(seconds=40 + 5 * 60)


def test_no_estimate_without_runs_to_go_by_or_when_not_running() -> None:
    flow = at("gap_analysis")
    missing = {k: v for k, v in EVERY.items() if k != "synthesis"}
    assert estimated_completion(COLLECTION, flow.status, missing, NOW) is None
    waiting = at("manual_collection")
    assert waiting.status.state is FlowState.WAITING_FOR_INPUT
    assert estimated_completion(COLLECTION, waiting.status, EVERY, NOW) is None


def test_an_overrunning_phase_counts_as_about_to_end() -> None:
    flow = at("synthesis")
    late = NOW + dt.timedelta(hours=2)
    assert estimated_completion(COLLECTION, flow.status, EVERY, late) == late


def took(seconds: float) -> CollectionFlowStatus:
    """A flow at gap_analysis, started now, whose finished phases took `seconds` each."""
    flow = at("gap_analysis")
    history = [
        h.model_copy(update={"finished_at": h.started_at + dt.timedelta(seconds=seconds)})
        if h.started_at is not None and h.name != "gap_analysis"
        else h
        for h in flow.status.phase_history
    ]
    return flow.status.model_copy(update={"phase_history": history})


def test_a_flow_slower_than_usual_so_far_is_expected_slower_for_the_rest() -> None:
    usual = estimated_completion(COLLECTION, took(60), EVERY, NOW)
    doubled = estimated_completion(COLLECTION, took(120), EVERY, NOW)
    assert usual is not None
    assert doubled is not None
    assert (doubled - NOW) == 2 * (usual - NOW)


def test_the_pace_is_bounded() -> None:
    usual = estimated_completion(COLLECTION, took(60), EVERY, NOW)
    assert usual is not None
    assert estimated_completion(COLLECTION, took(36000), EVERY, NOW) == NOW + 4 * (usual - NOW)
    assert estimated_completion(COLLECTION, took(0), EVERY, NOW) == NOW + (usual - NOW) / 2
