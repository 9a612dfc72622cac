"""The phase a worker runs, as the operator describes it in the Job's environment.

The operator passes everything a phase needs as environment variables, named in
`api.contract` (see "The worker contract" in docs/design.md). Parsing them in one place
means a handler never reads the environment itself, and a Job started with a wrong
environment fails with an error that names the variable instead of a `KeyError` deep inside
a handler.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from collectionflow.api.contract import WorkerRequest
from collectionflow.domain.registry import UnknownFlowType, UnknownPhase, flow_definition
from collectionflow.domain.results import PhaseOutcome, PhaseResult


@dataclass(frozen=True)
class PhaseContext(WorkerRequest):
    """The attempt a worker runs (`PhaseContext.from_environ`), and how its results are made."""

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
