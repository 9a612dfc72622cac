"""Pod status as the local node agent reports it: phases, conditions, container states."""

from __future__ import annotations

import datetime as dt

import pytest

from harness.nodeagent.model import termination_message
from harness.nodeagent.status import (
    ContainerStatus,
    PodFailure,
    Running,
    Terminated,
    Waiting,
    build_pod_status,
    parse_timestamp,
    pod_phase,
    restart_delay,
    should_restart,
    timestamp,
)

pytestmark = pytest.mark.unit

T0 = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(seconds=5)
T2 = T0 + dt.timedelta(seconds=9)


def waiting(reason: str = "ContainerCreating") -> ContainerStatus:
    return ContainerStatus("c", "img", Waiting(reason))


def running() -> ContainerStatus:
    return ContainerStatus("c", "img", Running(T1))


def exited(code: int) -> ContainerStatus:
    return ContainerStatus("c", "img", Terminated(code, "Error" if code else "Completed", T2, T1))


def backing_off() -> ContainerStatus:
    return ContainerStatus(
        "c", "img", Waiting("CrashLoopBackOff"), 1, Terminated(1, "Error", T2, T1)
    )


@pytest.mark.parametrize(
    ("policy", "containers", "phase"),
    [
        ("Never", [waiting()], "Pending"),
        ("Never", [waiting("ErrImagePull"), running()], "Pending"),
        ("Never", [running()], "Running"),
        ("Never", [running(), exited(1)], "Running"),
        ("Never", [exited(0)], "Succeeded"),
        ("Never", [exited(0), exited(0)], "Succeeded"),
        ("Never", [exited(0), exited(2)], "Failed"),
        ("OnFailure", [exited(0)], "Succeeded"),
        ("OnFailure", [exited(1)], "Running"),
        ("OnFailure", [backing_off()], "Running"),
        ("Always", [exited(0)], "Running"),
        ("Always", [backing_off()], "Running"),
        ("Always", [], "Pending"),
    ],
)
def test_pod_phase_like_the_kubelet(
    policy: str, containers: list[ContainerStatus], phase: str
) -> None:
    assert pod_phase(policy, containers) == phase


@pytest.mark.parametrize(
    ("policy", "code", "restart"),
    [
        ("Never", 0, False),
        ("Never", 1, False),
        ("OnFailure", 0, False),
        ("OnFailure", 137, True),
        ("Always", 0, True),
        ("Always", 1, True),
    ],
)
def test_should_restart(policy: str, code: int, restart: bool) -> None:
    assert should_restart(policy, code) is restart


def test_restart_delay_is_immediate_first_then_doubles_up_to_the_maximum() -> None:
    assert [restart_delay(n, 1.0, 10.0) for n in range(7)] == [0, 1, 2, 4, 8, 10, 10]


def test_running_pod_status() -> None:
    status = build_pod_status(containers=[running()], restart_policy="Never", start_time=T0, now=T1)

    assert status["phase"] == "Running"
    assert (status["reason"], status["message"]) == (None, None)
    assert (status["hostIP"], status["podIP"], status["podIPs"]) == (
        "127.0.0.1",
        "127.0.0.1",
        [{"ip": "127.0.0.1"}],
    )
    assert status["startTime"] == "2024-05-01T12:00:00Z"
    conditions = {c["type"]: c for c in status["conditions"]}
    assert {k: c["status"] for k, c in conditions.items()} == {
        "Initialized": "True",
        "Ready": "True",
        "ContainersReady": "True",
        "PodScheduled": "True",
    }
    assert status["containerStatuses"] == [
        {
            "name": "c",
            "image": "img",
            "imageID": "",
            "ready": True,
            "started": True,
            "restartCount": 0,
            "state": {"running": {"startedAt": "2024-05-01T12:00:05Z"}},
            "lastState": {},
        }
    ]


def test_terminated_container_status_carries_exit_code_message_and_times() -> None:
    container = ContainerStatus(
        "main",
        "collectionflow-operator:1",
        Terminated(1, "Error", T2, T1, message='{"state": "failed"}', container_id="x://1"),
        restart_count=2,
        last_state=Terminated(137, "Error", T1, T0),
        container_id="x://1",
        image_id="x://img",
    )

    status = build_pod_status(containers=[container], restart_policy="Never", start_time=T0, now=T2)

    assert status["phase"] == "Failed"
    [reported] = status["containerStatuses"]
    assert reported["state"] == {
        "terminated": {
            "exitCode": 1,
            "reason": "Error",
            "startedAt": "2024-05-01T12:00:05Z",
            "finishedAt": "2024-05-01T12:00:09Z",
            "message": '{"state": "failed"}',
            "containerID": "x://1",
        }
    }
    assert reported["lastState"]["terminated"]["exitCode"] == 137
    assert (reported["restartCount"], reported["ready"], reported["started"]) == (2, False, False)
    assert (reported["containerID"], reported["imageID"]) == ("x://1", "x://img")
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ContainersNotReady")
    assert ready["message"] == "containers with unready status: [main]"


def test_waiting_container_status() -> None:
    container = ContainerStatus(
        "main", "busybox", Waiting("ImagePullBackOff", "not available"), container_id="gone"
    )

    status = build_pod_status(containers=[container], restart_policy="Never", start_time=T0, now=T0)

    assert status["phase"] == "Pending"
    [reported] = status["containerStatuses"]
    assert reported["state"] == {
        "waiting": {"reason": "ImagePullBackOff", "message": "not available"}
    }
    assert "containerID" not in reported


def test_succeeded_pod_is_not_ready_because_completed() -> None:
    status = build_pod_status(
        containers=[exited(0)], restart_policy="OnFailure", start_time=T0, now=T2
    )

    assert status["phase"] == "Succeeded"
    for kind in ("Ready", "ContainersReady"):
        condition = next(c for c in status["conditions"] if c["type"] == kind)
        assert (condition["status"], condition["reason"]) == ("False", "PodCompleted")


def test_failure_overrides_the_phase() -> None:
    status = build_pod_status(
        containers=[exited(137)],
        restart_policy="Always",
        start_time=T0,
        now=T2,
        failure=PodFailure("DeadlineExceeded", "too long"),
    )

    assert (status["phase"], status["reason"], status["message"]) == (
        "Failed",
        "DeadlineExceeded",
        "too long",
    )


def test_conditions_keep_their_transition_time_while_unchanged() -> None:
    first = build_pod_status(containers=[running()], restart_policy="Always", start_time=T0, now=T1)
    same = build_pod_status(
        containers=[running()], restart_policy="Always", start_time=T0, now=T2, previous=first
    )
    changed = build_pod_status(
        containers=[backing_off()], restart_policy="Always", start_time=T0, now=T2, previous=first
    )

    def since(status: dict[str, object], kind: str) -> object:
        conditions = status["conditions"]
        assert isinstance(conditions, list)
        return next(c["lastTransitionTime"] for c in conditions if c["type"] == kind)

    assert same == first
    assert since(changed, "Ready") == "2024-05-01T12:00:09Z"
    assert since(changed, "Initialized") == "2024-05-01T12:00:05Z"


def test_pod_scheduled_keeps_the_time_of_binding() -> None:
    previous = {
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2024-05-01T11:59:59Z"}
        ]
    }

    status = build_pod_status(
        containers=[waiting()], restart_policy="Never", start_time=T0, now=T0, previous=previous
    )

    scheduled = next(c for c in status["conditions"] if c["type"] == "PodScheduled")
    assert scheduled["lastTransitionTime"] == "2024-05-01T11:59:59Z"


def test_timestamps_round_trip_in_utc() -> None:
    local = T0.astimezone(dt.timezone(dt.timedelta(hours=2)))

    assert timestamp(local) == "2024-05-01T12:00:00Z"
    assert parse_timestamp("2024-05-01T12:00:00Z") == T0
    assert parse_timestamp(None) is None
    assert parse_timestamp("not a time") is None


@pytest.mark.parametrize(
    ("file_tail", "log", "policy", "code", "message"),
    [
        (b'{"state": "succeeded"}', b"log", None, 0, '{"state": "succeeded"}'),
        (b"written", b"log", "FallbackToLogsOnError", 1, "written"),
        (b"", b"log\n", "FallbackToLogsOnError", 1, "log\n"),
        (b"", b"log\n", "FallbackToLogsOnError", 0, None),
        (b"", b"log\n", "File", 1, None),
        (b"", b"", "FallbackToLogsOnError", 1, None),
        (b"\xff\xfeok", b"", None, 0, "\ufffd\ufffdok"),
    ],
)
def test_termination_message(
    file_tail: bytes, log: bytes, policy: str | None, code: int, message: str | None
) -> None:
    assert termination_message(file_tail, log, policy, code) == message


def test_termination_message_keeps_the_last_4096_bytes() -> None:
    content = b"a" * 5000 + b"end"

    message = termination_message(content, b"", None, 0)

    assert message is not None
    assert len(message) == 4096
    assert message.endswith("end")


def test_log_fallback_keeps_the_last_80_lines_and_2048_bytes() -> None:
    lines = b"".join(f"line {i}\n".encode() for i in range(200))
    long_lines = b"".join(b"x" * 100 + f" {i}\n".encode() for i in range(50))

    short = termination_message(b"", lines, "FallbackToLogsOnError", 2)
    wide = termination_message(b"", long_lines, "FallbackToLogsOnError", 2)

    assert short is not None
    assert short.splitlines() == [f"line {i}" for i in range(120, 200)]
    assert wide is not None
    assert len(wide.encode()) == 2048
    assert wide.endswith(" 49\n")
