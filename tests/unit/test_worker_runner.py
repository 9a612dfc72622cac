"""Running a handler under the simulation knobs: exit codes, heartbeat pauses, failures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from collectionflow.domain.results import PhaseOutcome, PhaseResult
from collectionflow.worker.context import PhaseContext
from collectionflow.worker.main import report, run_phase, run_worker
from collectionflow.worker.phases import initialization
from collectionflow.worker.simulation import Simulation

pytestmark = pytest.mark.unit

ASSETS = [{"name": "web-01", "platform": "vmware", "os": "linux"}]


class RecordingHeartbeat:
    """Records the heartbeat calls and the sleeps between them, in order."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def start(self) -> None:
        self.events.append("start")

    def pause(self) -> None:
        self.events.append("pause")

    def stop(self) -> None:
        self.events.append("stop")

    def sleep(self, seconds: float) -> None:
        self.events.append(f"sleep {seconds:g}")


def context(simulate: dict[str, Any] | None = None, attempt: int = 1) -> PhaseContext:
    parameters: dict[str, Any] = {"assets": ASSETS}
    if simulate is not None:
        parameters["simulate"] = simulate
    return PhaseContext(
        namespace="ns",
        flow_name="flow",
        flow_uid="uid",
        flow_type="collection",
        phase="initialization",
        attempt=attempt,
        parameters=parameters,
        previous_outputs={},
        manual_input=None,
        heartbeat_lease=None,
        heartbeat_seconds=10.0,
    )


def run(ctx: PhaseContext, handler: Any = initialization) -> tuple[PhaseResult, int, list[str]]:
    heartbeat = RecordingHeartbeat()
    result, exit_code = run_phase(ctx, handler, heartbeat, heartbeat.sleep)
    return result, exit_code, heartbeat.events


def test_without_knobs_the_handler_just_runs() -> None:
    result, exit_code, events = run(context())
    assert (result.state, exit_code, events) == (PhaseOutcome.SUCCEEDED, 0, [])
    assert result.outputs["assetCount"] == 1


def test_knobs_of_other_phases_do_not_apply() -> None:
    result, exit_code, events = run(context({"synthesis": {"exitCode": 9, "sleepSeconds": 1}}))
    assert (result.state, exit_code, events) == (PhaseOutcome.SUCCEEDED, 0, [])


def test_sleep_works_while_heart_beating_then_hang_pauses_the_heartbeat() -> None:
    simulate = {"initialization": {"sleepSeconds": 1.5, "hangSeconds": 30}}
    result, exit_code, events = run(context(simulate))
    assert events == ["sleep 1.5", "pause", "sleep 30"]
    assert (result.state, exit_code) == (PhaseOutcome.SUCCEEDED, 0)


def test_exit_code_fails_the_phase_without_running_it() -> None:
    def must_not_run(ctx: PhaseContext) -> PhaseResult:
        raise AssertionError("the handler ran")

    result, exit_code, _ = run(context({"initialization": {"exitCode": 7}}), must_not_run)
    assert exit_code == 7
    assert result.state is PhaseOutcome.FAILED
    assert result.error == "simulated failure of attempt 1 (exit code 7)"
    assert result.next_phase == "platform_detection"


@pytest.mark.parametrize(
    ("knobs", "attempt", "expected_exit"),
    [
        ({"failAttempts": 2}, 1, 1),
        ({"failAttempts": 2}, 2, 1),
        ({"failAttempts": 2}, 3, 0),
        ({"failAttempts": 1, "exitCode": 42}, 1, 42),
        ({"failAttempts": 1, "exitCode": 42}, 2, 0),
        ({"failAttempts": 0, "exitCode": 42}, 1, 0),
    ],
)
def test_fail_attempts_lets_a_retry_succeed(
    knobs: dict[str, Any], attempt: int, expected_exit: int
) -> None:
    result, exit_code, _ = run(context({"initialization": knobs}, attempt))
    assert exit_code == expected_exit
    expected_state = PhaseOutcome.SUCCEEDED if expected_exit == 0 else PhaseOutcome.FAILED
    assert result.state is expected_state


def test_next_phase_can_be_forced_even_to_an_unknown_name() -> None:
    result, exit_code, _ = run(context({"initialization": {"nextPhase": "teleportation"}}))
    assert (result.state, result.next_phase, exit_code) == (
        PhaseOutcome.SUCCEEDED,
        "teleportation",
        0,
    )


@pytest.mark.parametrize(
    ("simulate", "message"),
    [
        ("slow", "parameters.simulate must be an object, got a string"),
        ({"initialization": [1]}, "parameters.simulate.initialization must be an object"),
        ({"initialization": {"sleepSecs": 1}}, "unknown knobs sleepSecs"),
        ({"initialization": {"sleepSeconds": -1}}, "sleepSeconds must be a number of seconds"),
        ({"initialization": {"hangSeconds": True}}, "hangSeconds must be a number of seconds"),
        ({"initialization": {"hangSeconds": "5"}}, "hangSeconds must be a number of seconds"),
        ({"initialization": {"exitCode": 0}}, "exitCode must be an integer from 1 to 255"),
        ({"initialization": {"exitCode": 256}}, "exitCode must be an integer from 1 to 255"),
        ({"initialization": {"exitCode": 2.0}}, "exitCode must be an integer from 1 to 255"),
        ({"initialization": {"failAttempts": -1}}, "failAttempts must be an integer 0 or more"),
        ({"initialization": {"nextPhase": ""}}, "nextPhase must be a phase name"),
        ({"initialization": {"nextPhase": 3}}, "nextPhase must be a phase name"),
        ({"initialization": {"silent": "yes"}}, "silent must be true or false"),
    ],
)
def test_invalid_knobs_fail_the_phase(simulate: Any, message: str) -> None:
    result, exit_code, events = run(context(simulate))
    assert (result.state, exit_code, events) == (PhaseOutcome.FAILED, 1, [])
    assert result.error is not None
    assert message in result.error


def test_a_failed_result_exits_1() -> None:
    def fails(ctx: PhaseContext) -> PhaseResult:
        return ctx.failed("nope")

    result, exit_code, _ = run(context(), fails)
    assert (result.state, result.error, exit_code) == (PhaseOutcome.FAILED, "nope", 1)


def test_a_handler_that_raises_gives_a_failed_result() -> None:
    def raises(ctx: PhaseContext) -> PhaseResult:
        raise KeyError("missing thing")

    result, exit_code, _ = run(context(), raises)
    assert exit_code == 1
    assert result.state is PhaseOutcome.FAILED
    assert result.error == "KeyError: 'missing thing'"
    assert result.next_phase == "platform_detection"


def test_a_handler_that_returns_something_else_gives_a_failed_result() -> None:
    def returns_dict(ctx: PhaseContext) -> Any:
        return {"state": "succeeded"}

    result, exit_code, _ = run(context(), returns_dict)
    assert exit_code == 1
    assert result.error == "the phase handler returned dict, not a PhaseResult"


def test_report_writes_the_termination_message_and_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "termination-log"
    result = context().succeeded({"n": 1}, "done")
    report({"TERMINATION_MESSAGE_PATH": str(path)}, result)
    assert PhaseResult.from_message(path.read_text()) == result
    assert PhaseResult.from_message(capsys.readouterr().out) == result


def test_report_survives_an_unwritable_termination_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "no-such-directory" / "termination-log"
    result = context().succeeded({}, "done")
    report({"TERMINATION_MESSAGE_PATH": str(path)}, result)
    assert PhaseResult.from_message(capsys.readouterr().out) == result
    assert f"cannot write the result to {path}" in caplog.text


def test_a_configuration_error_exits_2_with_a_failed_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "termination-log"
    exit_code = run_worker({"TERMINATION_MESSAGE_PATH": str(path)})
    assert exit_code == 2
    written = json.loads(path.read_text())
    assert written["state"] == "failed"
    assert written["error"] == "COLLECTIONFLOW_FLOW_NAMESPACE is not set"
    assert json.loads(capsys.readouterr().out) == written


def test_a_silent_worker_never_beats_and_only_on_the_attempts_asked() -> None:
    silent = {"initialization": {"silent": True, "hangAttempts": 1}}
    assert Simulation.for_context(context(silent)).silent
    assert not Simulation.for_context(context(silent, attempt=2)).silent
    assert not Simulation.for_context(context()).silent
