"""Prometheus metrics of the operator, served on the metrics port.

Besides stalls and recoveries, the age of the last sign of life of the watches is exported
(an event, a bookmark, a list, a new watch request): a watch can go silent without an error
(kopf issues 585 and 955 are two such cases), and a silent watch means flows stop moving. At
rest it stays under a minute (each watch request lasts at most that long,
`runtime.informer.WATCH_REQUEST_SECONDS`); the chart's alert `CollectionFlowWatchSilent`
fires past 15.
"""

from __future__ import annotations

import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from collectionflow.api.limits import InputKind
from collectionflow.api.models import FlowState
from collectionflow.domain.stall import STALL_REASONS


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.stalls = Counter(
            "collectionflow_stalls_detected",
            "Stalled flows detected, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.recoveries = Counter(
            "collectionflow_recoveries",
            "Recoveries carried out, by stall reason",
            ["reason"],
            registry=self.registry,
        )
        for reason in sorted(STALL_REASONS):  # at 0 from the start, so increase() sees the first
            self.stalls.labels(reason=reason.value)
            self.recoveries.labels(reason=reason.value)
        self.recoveries_exhausted = Counter(
            "collectionflow_recoveries_exhausted",
            "Flows failed because their recoveries were exhausted",
            registry=self.registry,
        )
        self.flows = Gauge(
            "collectionflow_flows", "Flows by state", ["state"], registry=self.registry
        )
        for each in FlowState:
            self.flows.labels(state=each.value).set(0)
        self.reconcilers = Gauge(
            "collectionflow_reconcilers",
            "Flows with a reconciler running: every flow but those at rest (Succeeded, or "
            "Failed with no retry asked for), which cost nothing",
            registry=self.registry,
        )
        self.reconciles = Counter(
            "collectionflow_reconciles",
            "Reconciles of flows, by what started them: the reconciler's start, a watch event, "
            "its own previous step, a resync, a conflicting write, or taking the lead",
            ["trigger"],
            registry=self.registry,
        )
        self.api_requests = Counter(
            "collectionflow_api_requests",
            "Requests the operator's reconcilers sent to the Kubernetes API (the watches are "
            "not counted)",
            registry=self.registry,
        )
        self.phase_duration = Histogram(
            "collectionflow_phase_duration_seconds",
            "Duration of finished phase attempts",
            ["phase", "outcome"],
            buckets=(1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
            registry=self.registry,
        )
        self.rejected_inputs = Counter(
            "collectionflow_rejected_inputs",
            "Untrusted inputs refused, by kind: a flow's parameters or spec, its input "
            "annotation, a phase's result, a watch event no flow could be read from",
            ["kind"],
            registry=self.registry,
        )
        for kind in InputKind:
            self.rejected_inputs.labels(kind=kind.value)
        self.status_overwritten = Counter(
            "collectionflow_status_overwritten",
            "Flow statuses someone else wrote, put back from the operator's record",
            registry=self.registry,
        )
        self.leader = Gauge(
            "collectionflow_leader",
            "1 on the replica that holds the leader Lease (the one that acts), 0 on a standby",
            registry=self.registry,
        )
        self.database_available = Gauge(
            "collectionflow_database_available",
            "1 while the database answers, 0 while the operator knows it down (flows held)",
            registry=self.registry,
        )
        self.in_process_runs = Gauge(
            "collectionflow_in_process_runs",
            "Phases running in the operator's own process (the runner's fallback)",
            registry=self.registry,
        )
        self.leader_transitions = Counter(
            "collectionflow_leader_transitions",
            "Times this replica became the leader or stopped being it",
            registry=self.registry,
        )
        self._last_watch_event = time.monotonic()
        Gauge(
            "collectionflow_watch_event_age_seconds",
            "Seconds since the operator's watches last gave a sign of life (an event, a "
            "bookmark, a list or a new watch request)",
            registry=self.registry,
        ).set_function(lambda: time.monotonic() - self._last_watch_event)
        self._states: dict[str, FlowState] = {}

    def watch_event(self) -> None:
        self._last_watch_event = time.monotonic()

    def flow_state(self, uid: str, state: FlowState | None) -> None:
        """Count ``uid`` under ``state`` (None: the flow is gone); O(1), called per event."""
        before = self._states.pop(uid, None) if state is None else self._states.get(uid)
        if state is not None:
            self._states[uid] = state
        if before is state:
            return
        if before is not None:
            self.flows.labels(state=before.value).dec()
        if state is not None:
            self.flows.labels(state=state.value).inc()

    def exposition(self) -> tuple[bytes, str]:
        """The metrics in Prometheus' text format, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
