"""The worker contract: how the operator tells a phase's container what to run, once.

The Job builder (`specs.jobs`) writes a `WorkerRequest` into the container's environment with
`to_environ`; the worker (`worker.context`) reads it back with the same names, and writes its
result to the same termination-message path. The heartbeat Lease the worker renews is built
here too, so the operator's watch (by label) and the worker's manifest cannot drift apart.
See "The worker contract" in docs/design.md.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Self

ENV_NAMESPACE: Final = "COLLECTIONFLOW_FLOW_NAMESPACE"
ENV_FLOW_NAME: Final = "COLLECTIONFLOW_FLOW_NAME"
ENV_FLOW_UID: Final = "COLLECTIONFLOW_FLOW_UID"
ENV_FLOW_TYPE: Final = "COLLECTIONFLOW_FLOW_TYPE"
ENV_PHASE: Final = "COLLECTIONFLOW_PHASE"
ENV_ATTEMPT: Final = "COLLECTIONFLOW_ATTEMPT"
ENV_JOB_NAME: Final = "COLLECTIONFLOW_JOB_NAME"
ENV_JOB_UID: Final = "COLLECTIONFLOW_JOB_UID"
ENV_PARAMETERS: Final = "COLLECTIONFLOW_PARAMETERS"
ENV_PREVIOUS_OUTPUTS: Final = "COLLECTIONFLOW_PREVIOUS_OUTPUTS"
ENV_INPUT: Final = "COLLECTIONFLOW_INPUT"
ENV_HEARTBEAT_LEASE: Final = "COLLECTIONFLOW_HEARTBEAT_LEASE"
ENV_HEARTBEAT_SECONDS: Final = "COLLECTIONFLOW_HEARTBEAT_SECONDS"
ENV_HEARTBEAT_FILE: Final = "COLLECTIONFLOW_HEARTBEAT_FILE"
"""In the operator's own process only (the in-process runner): the worker touches this file
instead of renewing a Lease, and the operator reads its time; the worker holds no credential."""
ENV_TERMINATION_MESSAGE_PATH: Final = "TERMINATION_MESSAGE_PATH"

TERMINATION_MESSAGE_PATH: Final = "/dev/termination-log"
DEFAULT_HEARTBEAT_SECONDS: Final = 10.0

JOB_UID_LABEL: Final = "controller-uid"
"""The label the Job controller puts on its pods (every version; 1.27 added a prefixed twin);
the downward API hands it to the worker as `COLLECTIONFLOW_JOB_UID`, so the worker owns its
Lease by its Job without reading the Job."""


def compact_json(value: Any) -> str:
    """JSON as the environment carries it: no spaces, keys sorted."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


class WorkerConfigError(ValueError):
    """The worker's environment does not describe a phase it can run."""


@dataclass(frozen=True)
class WorkerRequest:
    """One phase attempt, as its worker sees it: written into the Job's environment by
    `to_environ`, read back by `from_environ`, one list of fields for both."""

    namespace: str
    flow_name: str
    flow_uid: str
    flow_type: str
    phase: str
    attempt: int
    heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS
    parameters: dict[str, Any] = field(default_factory=dict)
    previous_outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    manual_input: dict[str, Any] | None = None
    job_name: str | None = None
    heartbeat_lease: str | None = None  # the Lease the worker renews: its Job's name
    job_uid: str | None = None  # the downward API's, in the pod; never written by the operator

    def to_environ(self) -> dict[str, str]:
        """The environment variables that describe this attempt."""
        values = {
            ENV_NAMESPACE: self.namespace,
            ENV_FLOW_NAME: self.flow_name,
            ENV_FLOW_UID: self.flow_uid,
            ENV_FLOW_TYPE: self.flow_type,
            ENV_PHASE: self.phase,
            ENV_ATTEMPT: str(self.attempt),
            ENV_PARAMETERS: compact_json(self.parameters),
            ENV_PREVIOUS_OUTPUTS: compact_json(self.previous_outputs),
            ENV_HEARTBEAT_SECONDS: f"{self.heartbeat_seconds:g}",
        }
        if self.job_name:
            values[ENV_JOB_NAME] = self.job_name
        lease = self.heartbeat_lease or self.job_name
        if lease:
            values[ENV_HEARTBEAT_LEASE] = lease
        if self.manual_input is not None:
            values[ENV_INPUT] = compact_json(self.manual_input)
        return values

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Self:
        """The request the environment describes, or WorkerConfigError naming the variable."""
        previous = _json_object(environ, ENV_PREVIOUS_OUTPUTS, required=False)
        for phase, outputs in previous.items():
            if not isinstance(outputs, dict):
                raise WorkerConfigError(
                    f"{ENV_PREVIOUS_OUTPUTS} must map each phase to a JSON object; "
                    f"{phase!r} maps to {json_type_name(outputs)}"
                )
        return cls(
            namespace=_required(environ, ENV_NAMESPACE),
            flow_name=_required(environ, ENV_FLOW_NAME),
            flow_uid=_required(environ, ENV_FLOW_UID),
            flow_type=_required(environ, ENV_FLOW_TYPE),
            phase=_required(environ, ENV_PHASE),
            attempt=_attempt(environ),
            heartbeat_seconds=_heartbeat_seconds(environ),
            parameters=_json_object(environ, ENV_PARAMETERS, required=True),
            previous_outputs=previous,
            manual_input=_optional_json_object(environ, ENV_INPUT),
            job_name=environ.get(ENV_JOB_NAME, "").strip() or None,
            heartbeat_lease=environ.get(ENV_HEARTBEAT_LEASE, "").strip() or None,
            job_uid=environ.get(ENV_JOB_UID, "").strip() or None,
        )


def job_uid_env() -> dict[str, Any]:
    """The env var that gives the worker its Job's uid through the downward API."""
    return {
        "name": ENV_JOB_UID,
        "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{JOB_UID_LABEL}']"}},
    }


def json_type_name(value: Any) -> str:
    """How an error message names the JSON type of `value`."""
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")


def _required(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise WorkerConfigError(f"{name} is not set")
    return value


def _attempt(environ: Mapping[str, str]) -> int:
    raw = _required(environ, ENV_ATTEMPT)
    try:
        attempt = int(raw)
    except ValueError:
        raise WorkerConfigError(f"{ENV_ATTEMPT} must be an integer, got {raw!r}") from None
    if attempt < 1:
        raise WorkerConfigError(f"{ENV_ATTEMPT} must be 1 or more, got {attempt}")
    return attempt


def _heartbeat_seconds(environ: Mapping[str, str]) -> float:
    raw = environ.get(ENV_HEARTBEAT_SECONDS, "").strip()
    if not raw:
        return DEFAULT_HEARTBEAT_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        raise WorkerConfigError(
            f"{ENV_HEARTBEAT_SECONDS} must be a number of seconds, got {raw!r}"
        ) from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise WorkerConfigError(f"{ENV_HEARTBEAT_SECONDS} must be positive, got {raw!r}")
    return seconds


def _parse_json(environ: Mapping[str, str], name: str) -> Any:
    try:
        return json.loads(environ[name])
    except json.JSONDecodeError as error:
        raise WorkerConfigError(f"{name} is not valid JSON: {error}") from None


def _json_object(environ: Mapping[str, str], name: str, *, required: bool) -> dict[str, Any]:
    """The JSON object in `name`; an empty one when it is unset and not `required`."""
    if not environ.get(name, "").strip():
        if required:
            raise WorkerConfigError(f"{name} is not set")
        return {}
    value = _parse_json(environ, name)
    if not isinstance(value, dict):
        raise WorkerConfigError(f"{name} must be a JSON object, got {json_type_name(value)}")
    return value


def _optional_json_object(environ: Mapping[str, str], name: str) -> dict[str, Any] | None:
    if not environ.get(name, "").strip():
        return None
    value = _parse_json(environ, name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise WorkerConfigError(
            f"{name} must be a JSON object or null, got {json_type_name(value)}"
        )
    return value
