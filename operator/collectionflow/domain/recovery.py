"""What to do about a stalled flow, within its bounded recovery policy.

- `MissedCompletion`: advance the flow past the finished phase; never rerun it.
- `DatabaseDrift`: write the flow's state to the database again.
- `NoProgress`, `JobMissing`, `PodNotStarting`, `RunnerLost` (`domain.stall.RERUNS_PHASE`):
  with `recoveryPolicy: RetryPhase` (the default), delete what is left of the stale attempt
  and start the phase again as the next attempt, at most `maxRecoveries` times and no sooner
  than the backoff after the previous recovery; then fail with `RecoveryExhausted`. With
  `recoveryPolicy: Fail`, fail at once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from collectionflow.api.models import RecoveryPolicy
from collectionflow.api.reasons import ConditionReason
from collectionflow.domain.decision import Decision, FlowView
from collectionflow.domain.failing import fail_flow
from collectionflow.domain.machine import recover_phase
from collectionflow.domain.stall import Finding


class RecoveryAction(StrEnum):
    ADVANCE = "advance"
    RESYNC = "resync"
    RETRY_PHASE = "retry_phase"
    FAIL = "fail"
    BACK_OFF = "back_off"


@dataclass(frozen=True)
class RecoveryPlan:
    action: RecoveryAction
    decision: Decision | None = None
    delete_job: str | None = None
    summary: str = ""
    exhausted: bool = False


def plan_recovery(
    flow: FlowView,
    finding: Finding,
    now: dt.datetime,
    max_recoveries: int,
    backoff: dt.timedelta,
) -> RecoveryPlan:
    status = flow.status
    if finding.reason is ConditionReason.MISSED_COMPLETION:
        return RecoveryPlan(
            RecoveryAction.ADVANCE, summary="advanced past the finished phase without rerunning it"
        )
    if finding.reason is ConditionReason.DATABASE_DRIFT:
        return RecoveryPlan(RecoveryAction.RESYNC, summary="re-synced the database from the flow")

    if flow.spec.recovery_policy is RecoveryPolicy.FAIL:
        message = f"stalled ({finding.reason.value}) and recoveryPolicy is Fail: {finding.message}"
        return RecoveryPlan(
            RecoveryAction.FAIL,
            decision=fail_flow(flow, now, finding.reason, message),
            delete_job=status.current_job,
            summary=message,
        )
    if status.recoveries >= max_recoveries:
        message = (
            f"stalled ({finding.reason.value}) after {status.recoveries} of {max_recoveries} "
            f"recoveries: {finding.message}"
        )
        return RecoveryPlan(
            RecoveryAction.FAIL,
            decision=fail_flow(flow, now, ConditionReason.RECOVERY_EXHAUSTED, message),
            delete_job=status.current_job,
            summary=message,
            exhausted=True,
        )
    last = status.last_recovery_time
    if last is not None and now - last < backoff:
        wait = (backoff - (now - last)).total_seconds()
        return RecoveryPlan(RecoveryAction.BACK_OFF, summary=f"next recovery in {wait:.0f}s")
    decision = recover_phase(flow, now, finding.reason.value)
    attempt = status.attempt + 1
    return RecoveryPlan(
        RecoveryAction.RETRY_PHASE,
        decision=decision,
        delete_job=status.current_job,
        summary=(
            f"started phase {status.phase} again as attempt {attempt} "
            f"(recovery {status.recoveries + 1} of {max_recoveries})"
        ),
    )
