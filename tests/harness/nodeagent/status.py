"""What the local node agent reports of a pod: its phase and the status of its containers.

Pure, like :mod:`harness.nodeagent.model`: the pod status a kubelet would report for its
containers. The bodies of the agent's other writes are in :mod:`harness.nodeagent.bodies`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from harness.nodeagent.model import JsonDict

TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})
DEFAULT_SCHEDULER = "default-scheduler"
DEFAULT_GRACE_SECONDS = 30.0


@dataclass(frozen=True)
class Waiting:
    reason: str
    message: str | None = None


@dataclass(frozen=True)
class Running:
    started_at: dt.datetime


@dataclass(frozen=True)
class Terminated:
    exit_code: int
    reason: str
    finished_at: dt.datetime
    started_at: dt.datetime | None = None
    message: str | None = None
    container_id: str | None = None
    signal: int | None = None


ContainerState = Waiting | Running | Terminated


@dataclass(frozen=True)
class ContainerStatus:
    """What the agent knows about one container, the input of :func:`build_pod_status`."""

    name: str
    image: str
    state: ContainerState
    restart_count: int = 0
    last_state: Terminated | None = None
    container_id: str | None = None
    image_id: str = ""


@dataclass(frozen=True)
class PodFailure:
    """A pod-level verdict that overrides the phase computed from containers."""

    reason: str
    message: str
    phase: str = "Failed"


def timestamp(moment: dt.datetime) -> str:
    """RFC 3339 in UTC with second precision, as metav1.Time serialises."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(value: object) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def grace_period(pod: JsonDict) -> float:
    """Seconds between SIGTERM and SIGKILL: the deletion's grace, else the pod's, else 30."""
    metadata = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    for value in (
        metadata.get("deletionGracePeriodSeconds"),
        spec.get("terminationGracePeriodSeconds"),
    ):
        if value is not None:
            return float(value)
    return DEFAULT_GRACE_SECONDS


def should_restart(restart_policy: str, exit_code: int) -> bool:
    """Whether a container that exited with ``exit_code`` is started again."""
    if restart_policy == "Always":
        return True
    if restart_policy == "OnFailure":
        return exit_code != 0
    return False


def pod_phase(restart_policy: str, containers: Sequence[ContainerStatus]) -> str:
    """The pod phase from its containers, as the kubelet's getPhase computes it."""
    waiting = running = stopped = succeeded = 0
    for container in containers:
        state = container.state
        if isinstance(state, Running):
            running += 1
        elif isinstance(state, Terminated):
            stopped += 1
            succeeded += state.exit_code == 0
        elif container.last_state is not None:
            stopped += 1  # waiting to restart after a previous run
        else:
            waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if restart_policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if restart_policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def _state_json(state: ContainerState) -> JsonDict:
    if isinstance(state, Waiting):
        waiting: JsonDict = {"reason": state.reason}
        if state.message:
            waiting["message"] = state.message
        return {"waiting": waiting}
    if isinstance(state, Running):
        return {"running": {"startedAt": timestamp(state.started_at)}}
    terminated: JsonDict = {
        "exitCode": state.exit_code,
        "reason": state.reason,
        "finishedAt": timestamp(state.finished_at),
    }
    if state.started_at is not None:
        terminated["startedAt"] = timestamp(state.started_at)
    if state.message:
        terminated["message"] = state.message
    if state.container_id:
        terminated["containerID"] = state.container_id
    if state.signal:
        terminated["signal"] = state.signal
    return {"terminated": terminated}


def container_status_json(container: ContainerStatus) -> JsonDict:
    running = isinstance(container.state, Running)
    status: JsonDict = {
        "name": container.name,
        "image": container.image,
        "imageID": container.image_id,
        "ready": running,
        "started": running,
        "restartCount": container.restart_count,
        "state": _state_json(container.state),
        "lastState": {} if container.last_state is None else _state_json(container.last_state),
    }
    container_id = container.container_id
    if isinstance(container.state, Terminated) and container.state.container_id:
        container_id = container.state.container_id
    if container_id and not isinstance(container.state, Waiting):
        status["containerID"] = container_id
    return status


def _condition(
    kind: str,
    ok: bool,
    now: dt.datetime,
    previous: Mapping[str, JsonDict],
    reason: str | None = None,
    message: str | None = None,
) -> JsonDict:
    status = "True" if ok else "False"
    before = previous.get(kind)
    since = (
        str(before["lastTransitionTime"])
        if before and before.get("status") == status and before.get("lastTransitionTime")
        else timestamp(now)
    )
    condition: JsonDict = {
        "type": kind,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": since,
    }
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


def build_pod_status(
    *,
    containers: Sequence[ContainerStatus],
    restart_policy: str,
    start_time: dt.datetime,
    now: dt.datetime,
    host_ip: str = "127.0.0.1",
    pod_ip: str = "127.0.0.1",
    failure: PodFailure | None = None,
    previous: JsonDict | None = None,
) -> JsonDict:
    """The pod status a kubelet reports, for a JSON merge patch of the status subresource.

    ``previous`` is the status reported before; conditions keep its ``lastTransitionTime``
    while their status does not change. ``reason``/``message`` are None (deleted by the merge
    patch) unless ``failure`` is given.
    """
    phase = failure.phase if failure else pod_phase(restart_policy, containers)
    before = {
        str(c.get("type")): c for c in ((previous or {}).get("conditions") or []) if c.get("type")
    }
    unready = [c.name for c in containers if not isinstance(c.state, Running)]
    if phase == "Succeeded":
        ready, reason, message = False, "PodCompleted", None
    elif unready:
        names = " ".join(unready)
        ready, reason, message = (
            False,
            "ContainersNotReady",
            f"containers with unready status: [{names}]",
        )
    else:
        ready, reason, message = True, None, None
    scheduled = before.get("PodScheduled")
    conditions = [
        _condition("Initialized", True, now, before),
        _condition("Ready", ready, now, before, reason, message),
        _condition("ContainersReady", ready, now, before, reason, message),
        {
            "type": "PodScheduled",
            "status": "True",
            "lastProbeTime": None,
            "lastTransitionTime": (
                scheduled["lastTransitionTime"]
                if scheduled
                and scheduled.get("status") == "True"
                and scheduled.get("lastTransitionTime")
                else timestamp(start_time)
            ),
        },
    ]
    return {
        "phase": phase,
        "reason": failure.reason if failure else None,
        "message": failure.message if failure else None,
        "hostIP": host_ip,
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": timestamp(start_time),
        "conditions": conditions,
        "containerStatuses": [container_status_json(c) for c in containers],
    }


def restart_delay(restarts_so_far: int, base: float, maximum: float) -> float:
    """Back-off before starting a container again: immediately the first time, then doubling.

    Like the kubelet's CrashLoopBackOff (10 s doubling to 5 min), with test-sized numbers.
    """
    if restarts_so_far <= 0:
        return 0.0
    return float(min(base * 2 ** (restarts_so_far - 1), maximum))
