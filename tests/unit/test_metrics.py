"""The operator's Prometheus metrics, each read back from its own registry.

The watch-event age is driven by a fake monotonic clock, so no test sleeps.
"""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from collectionflow import metrics as metrics_module
from collectionflow.api.models import FlowState
from collectionflow.domain.stall import STALL_REASONS
from collectionflow.metrics import Metrics

pytestmark = pytest.mark.unit


class FakeMonotonic:
    """Stands in for the `time` module inside `collectionflow.metrics`."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeMonotonic:
    fake = FakeMonotonic()
    monkeypatch.setattr(metrics_module, "time", fake)
    return fake


@pytest.fixture
def metrics(clock: FakeMonotonic) -> Metrics:
    return Metrics(CollectorRegistry())


def flows_by_state(metrics: Metrics) -> dict[FlowState, float | None]:
    return {
        state: metrics.registry.get_sample_value("collectionflow_flows", {"state": state.value})
        for state in FlowState
    }


def counts(**by_state: float) -> dict[FlowState, float | None]:
    """Every state at 0 except the ones named (by enum member name, e.g. RUNNING=2)."""
    return {state: by_state.get(state.name, 0.0) for state in FlowState}


def test_each_metrics_owns_its_registry() -> None:
    first, second = Metrics(), Metrics(CollectorRegistry())
    assert first.registry is not second.registry
    first.stalls.labels(reason="NoProgress").inc()
    assert (
        second.registry.get_sample_value(
            "collectionflow_stalls_detected_total", {"reason": "NoProgress"}
        )
        == 0
    )


def test_every_stall_reason_is_counted_from_zero_so_the_first_stall_is_an_increase() -> None:
    metrics = Metrics()
    for name in ("collectionflow_stalls_detected_total", "collectionflow_recoveries_total"):
        for reason in STALL_REASONS:
            sample = metrics.registry.get_sample_value(name, {"reason": reason.value})
            assert sample == 0, (name, reason)


def test_flow_state_counts_flows_by_state(metrics: Metrics) -> None:
    metrics.flow_state("uid-a", FlowState.RUNNING)
    metrics.flow_state("uid-b", FlowState.RUNNING)
    metrics.flow_state("uid-c", FlowState.WAITING_FOR_INPUT)
    assert flows_by_state(metrics) == counts(RUNNING=2, WAITING_FOR_INPUT=1)


def test_a_flow_that_changes_state_moves_between_counts(metrics: Metrics) -> None:
    metrics.flow_state("uid-a", FlowState.RUNNING)
    metrics.flow_state("uid-b", FlowState.RUNNING)
    metrics.flow_state("uid-a", FlowState.SUCCEEDED)
    metrics.flow_state("uid-a", FlowState.SUCCEEDED)
    assert flows_by_state(metrics) == counts(RUNNING=1, SUCCEEDED=1)


def test_a_forgotten_flow_is_no_longer_counted(metrics: Metrics) -> None:
    metrics.flow_state("uid-a", FlowState.RUNNING)
    metrics.flow_state("uid-b", FlowState.FAILED)
    metrics.flow_state("uid-a", None)
    assert flows_by_state(metrics) == counts(FAILED=1)
    metrics.flow_state("uid-never-seen", None)
    metrics.flow_state("uid-b", None)
    assert flows_by_state(metrics) == counts()


def test_the_watch_event_age_grows_and_resets_on_a_watch_event(
    metrics: Metrics, clock: FakeMonotonic
) -> None:
    def age() -> float | None:
        return metrics.registry.get_sample_value("collectionflow_watch_event_age_seconds")

    assert age() == 0.0
    clock.now += 42.5
    assert age() == 42.5
    metrics.watch_event()
    assert age() == 0.0
    clock.now += 3.0
    assert age() == 3.0
