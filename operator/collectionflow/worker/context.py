"""The phase a worker runs, as the operator describes it in the Job's environment.

The operator passes everything a phase needs as environment variables, named in
`api.contract` (see "The worker contract" in docs/design.md). Parsing them in one place
means a handler never reads the environment itself, and a Job started with a wrong
environment fails with an error that names the variable instead of a `KeyError` deep inside
a handler.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from collectionflow.api.contract import (
    DEFAULT_HEARTBEAT_SECONDS,
    ENV_ATTEMPT,
    ENV_FLOW_NAME,
    ENV_FLOW_TYPE,
    ENV_FLOW_UID,
    ENV_HEARTBEAT_LEASE,
    ENV_HEARTBEAT_SECONDS,
    ENV_INPUT,
    ENV_JOB_NAME,
    ENV_JOB_UID,
    ENV_NAMESPACE,
    ENV_PARAMETERS,
    ENV_PHASE,
    ENV_PREVIOUS_OUTPUTS,
)
from collectionflow.domain.registry import UnknownFlowType, UnknownPhase, flow_definition
from collectionflow.domain.results import PhaseOutcome, PhaseResult


class WorkerConfigError(ValueError):
    """The worker's environment does not describe a phase it can run."""


@dataclass(frozen=True)
class PhaseContext:
    namespace: str
    flow_name: str
    flow_uid: str
    flow_type: str
    phase: str
    attempt: int
    parameters: dict[str, Any]
    previous_outputs: dict[str, dict[str, Any]]
    input: dict[str, Any] | None
    heartbeat_lease: str | None
    heartbeat_seconds: float
    job_name: str | None = None
    job_uid: str | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> PhaseContext:
        """The context the environment describes, or WorkerConfigError naming the variable."""
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
            parameters=_json_object(environ, ENV_PARAMETERS, required=True),
            previous_outputs=previous,
            input=_optional_json_object(environ, ENV_INPUT),
            heartbeat_lease=environ.get(ENV_HEARTBEAT_LEASE, "").strip() or None,
            heartbeat_seconds=_heartbeat_seconds(environ),
            job_name=environ.get(ENV_JOB_NAME, "").strip() or None,
            job_uid=environ.get(ENV_JOB_UID, "").strip() or None,
        )

    @property
    def default_next_phase(self) -> str | None:
        """The registry's successor of this phase; None after the last phase or off-registry."""
        try:
            return flow_definition(self.flow_type).next_phase_for(self.phase)
        except (UnknownFlowType, UnknownPhase):
            return None

    def succeeded(
        self, outputs: dict[str, Any], agent_decision: str, next_phase: str | None = None
    ) -> PhaseResult:
        """A succeeded result; `next_phase` defaults to the registry's successor."""
        return PhaseResult(
            state=PhaseOutcome.SUCCEEDED,
            next_phase=next_phase or self.default_next_phase,
            agent_decision=agent_decision,
            outputs=outputs,
        )

    def failed(self, error: str, agent_decision: str = "") -> PhaseResult:
        """A failed result carrying `error`; next_phase is still the registry's successor."""
        return PhaseResult(
            state=PhaseOutcome.FAILED,
            next_phase=self.default_next_phase,
            agent_decision=agent_decision or f"phase {self.phase} failed",
            error=error,
        )


PhaseHandler = Callable[[PhaseContext], PhaseResult]
"""What runs a phase: built-in or plug-in, it turns the context into a result."""


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


def json_type_name(value: Any) -> str:
    """How an error message names the JSON type of `value`."""
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")
