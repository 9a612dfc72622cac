"""Where a phase attempt runs: a Job, or, when Jobs are refused for good, the operator itself.

The operator's setting decides (Job by default); a flow can only ask for `Job`, and a phase
that is not the operator's built-in worker is always a Job. `Auto` tries a Job. A refusal
that will not go away by itself moves the attempt in-process:
403 (RBAC or a policy), 422 (an admission webhook rejecting the pod spec), or a quota that is
still exceeded after a grace period (a quota may free up as other Jobs finish). `Job` never
falls back: the flow fails with the API's reason. Pure: the controller calls the API and acts.

An in-process attempt is reported with Job-shaped bodies (a Job with a Complete or Failed
condition, one pod whose container terminated with the result as its termination message),
so the state machine and the stall rules read it exactly as they read a Job.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from collectionflow.api.models import Runner


class Verdict(StrEnum):
    FALL_BACK = "fall back"  # run the attempt in the operator
    WAIT = "wait"  # retry the Job later (a quota within its grace, or a passing error)
    REFUSED = "refused"  # runner Job: the flow fails with the API's reason


@dataclass(frozen=True)
class Refusal:
    status: int
    message: str

    @property
    def quota(self) -> bool:
        return self.status == 403 and "exceeded quota" in self.message

    @property
    def lasting(self) -> bool:
        return self.status in (403, 422)


def runner_for(spec_runner: Runner | None, setting: Runner, built_in: bool) -> Runner:
    """Where an attempt runs: the operator's setting, unless the flow asks for Job; a phase
    that is not the built-in worker (its own image, command or arguments) is always a Job
    that never falls back."""
    if spec_runner is Runner.JOB or not built_in:
        return Runner.JOB
    return setting


def verdict(
    runner: Runner,
    refusal: Refusal,
    refused_since: dt.datetime,
    now: dt.datetime,
    quota_grace: dt.timedelta,
) -> Verdict:
    """What to do when creating the attempt's Job was refused."""
    if not refusal.lasting:
        return Verdict.WAIT
    if refusal.quota and now - refused_since < quota_grace:
        return Verdict.WAIT
    return Verdict.REFUSED if runner is Runner.JOB else Verdict.FALL_BACK
