"""The reasons the operator writes: of Events on a flow, and of its conditions.

Both are part of the API users script against (`kubectl get events --field-selector
reason=FlowStalled`, `kubectl wait`), so each is named once here and nowhere as a raw string.
"""

from __future__ import annotations

from enum import StrEnum


class EventReason(StrEnum):
    """The `reason` of an Event the operator posts on a flow."""

    PHASE_STARTED = "PhaseStarted"
    PHASE_SUCCEEDED = "PhaseSucceeded"
    PHASE_FAILED = "PhaseFailed"
    FLOW_SUCCEEDED = "FlowSucceeded"
    FLOW_FAILED = "FlowFailed"
    FLOW_SUSPENDED = "FlowSuspended"
    FLOW_RESUMED = "FlowResumed"
    RETRY_REQUESTED = "RetryRequested"
    INPUT_REQUIRED = "InputRequired"
    INPUT_REMINDER = "InputReminder"
    FLOW_STALLED = "FlowStalled"
    FLOW_RECOVERED = "FlowRecovered"
    CAUGHT_UP = "CaughtUp"
    DATABASE_UNAVAILABLE = "DatabaseUnavailable"
    DATABASE_RECOVERED = "DatabaseRecovered"
    FALLBACK_RUNNER = "FallbackRunner"
    JOB_DEFERRED = "JobDeferred"  # a quota refused the Job: retried until the grace ends
    INPUT_REJECTED = "InputRejected"
    INVALID_RESULT = "InvalidResult"
    STATUS_OVERWRITTEN = "StatusOverwritten"
    MASTER_FLOW_KEPT = "MasterFlowKept"  # spec.masterFlowId changed after the flow joined one
    # spec.clientAccountId or engagementId beside a masterFlowId: the joined master keeps its own.
    MASTER_FIELDS_UNUSED = "MasterFieldsUnused"
    # On the leader Lease, not a flow: this replica took, or lost, the lead.
    LEADER_ELECTED = "LeaderElected"
    LEADER_LOST = "LeaderLost"


class ConditionReason(StrEnum):
    """The `reason` of a flow's conditions: why it is in its state."""

    PHASE_RUNNING = "PhaseRunning"
    WAITING = "Waiting"  # running, but held by something other than its own work
    RECOVERING = "Recovering"
    SUSPENDED = "Suspended"
    WAITING_FOR_INPUT = "WaitingForInput"
    SUCCEEDED = "Succeeded"
    INVALID_SPEC = "InvalidSpec"
    UNKNOWN_PHASE = "UnknownPhase"
    UNKNOWN_MASTER_FLOW = "UnknownMasterFlow"
    PHASE_FAILED = "PhaseFailed"
    RECOVERY_EXHAUSTED = "RecoveryExhausted"
    INPUT_TIMEOUT = "InputTimeout"
    # A stall failing the flow under `recoveryPolicy: Fail` names the stall's reason.
    NO_PROGRESS = "NoProgress"
    JOB_MISSING = "JobMissing"
    POD_NOT_STARTING = "PodNotStarting"
    MISSED_COMPLETION = "MissedCompletion"
    DATABASE_DRIFT = "DatabaseDrift"
    RUNNER_LOST = "RunnerLost"
    JOB_REFUSED = "JobRefused"
    INPUT_REJECTED = "InputRejected"
    INVALID_RESULT = "InvalidResult"
    TRANSITION_BUDGET_EXHAUSTED = "TransitionBudgetExhausted"
