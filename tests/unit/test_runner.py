"""Where an attempt runs when its Job is refused, and the Job-shaped report of an in-process run."""

from __future__ import annotations

import datetime as dt

import pytest

from collectionflow.api.models import Runner
from collectionflow.domain.decision import JobState
from collectionflow.domain.observe import job_finished_at, observe_job
from collectionflow.domain.results import PhaseOutcome, PhaseResult
from collectionflow.domain.runner import Refusal, Verdict, runner_for, verdict
from collectionflow.specs.inprocess import finished_bodies, running_bodies

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
GRACE = dt.timedelta(seconds=60)
FORBIDDEN = Refusal(403, 'jobs.batch is forbidden: User "op" cannot create resource "jobs"')
REJECTED = Refusal(422, "admission webhook denied the request")
QUOTA = Refusal(403, 'jobs.batch "x" is forbidden: exceeded quota: none, requested: count/jobs')


@pytest.mark.parametrize("refusal", [FORBIDDEN, REJECTED])
def test_auto_falls_back_at_once_on_a_lasting_refusal(refusal: Refusal) -> None:
    assert verdict(Runner.AUTO, refusal, NOW, NOW, GRACE) is Verdict.FALL_BACK


def test_a_quota_is_waited_out_for_its_grace_first() -> None:
    assert verdict(Runner.AUTO, QUOTA, NOW, NOW + GRACE / 2, GRACE) is Verdict.WAIT
    assert verdict(Runner.AUTO, QUOTA, NOW, NOW + GRACE, GRACE) is Verdict.FALL_BACK


def test_a_passing_error_is_retried_not_fallen_back_from() -> None:
    assert verdict(Runner.AUTO, Refusal(500, "etcd timeout"), NOW, NOW, GRACE) is Verdict.WAIT


def test_runner_job_never_falls_back() -> None:
    assert verdict(Runner.JOB, FORBIDDEN, NOW, NOW, GRACE) is Verdict.REFUSED
    assert verdict(Runner.JOB, QUOTA, NOW, NOW + GRACE, GRACE) is Verdict.REFUSED


def test_the_operator_chooses_and_a_flow_can_only_ask_for_job() -> None:
    assert runner_for(None, Runner.AUTO, built_in=True) is Runner.AUTO
    assert runner_for(None, Runner.IN_PROCESS, built_in=True) is Runner.IN_PROCESS
    assert runner_for(Runner.JOB, Runner.AUTO, built_in=True) is Runner.JOB
    assert runner_for(Runner.JOB, Runner.IN_PROCESS, built_in=True) is Runner.JOB


@pytest.mark.parametrize("setting", list(Runner))
def test_a_phase_of_its_own_image_or_command_is_always_a_job(setting: Runner) -> None:
    assert runner_for(None, setting, built_in=False) is Runner.JOB


def test_an_in_process_run_reads_like_a_job() -> None:
    job, pods = running_bodies("team-a", "f-gap-analysis-1", NOW)
    assert observe_job("f-gap-analysis-1", job, pods).state is JobState.ACTIVE

    result = PhaseResult(
        state=PhaseOutcome.SUCCEEDED, next_phase="synthesis", agent_decision="ok", outputs={}
    )
    later = NOW + dt.timedelta(seconds=3)
    job, pods = finished_bodies("team-a", "f-gap-analysis-1", NOW, later, 0, result.to_message())
    done = observe_job("f-gap-analysis-1", job, pods)
    assert done.state is JobState.SUCCEEDED
    assert done.result == result
    assert job_finished_at(job) == later

    job, pods = finished_bodies(
        "team-a", "f-gap-analysis-1", NOW, later, 137, None, "DeadlineExceeded"
    )
    failed = observe_job("f-gap-analysis-1", job, pods)
    assert (failed.state, failed.exit_code) == (JobState.FAILED, 137)
