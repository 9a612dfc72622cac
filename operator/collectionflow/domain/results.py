"""What a phase reports back: its outcome and, always, the phase that should come next.

The worker writes a `PhaseResult` as JSON into the container's termination message; the
operator parses it back. The kubelet keeps at most 4096 bytes of a termination message, so
encoding shrinks the outputs rather than ever producing a result that would be cut mid-JSON.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from collectionflow.api.limits import MAX_RESULT_BYTES, PHASE_RESULT, InputRejected

TERMINATION_MESSAGE_LIMIT = MAX_RESULT_BYTES
# A longer next phase cannot be a registry phase; cutting it keeps it unknown and short.
_MAX_PHASE_NAME = 253


class PhaseOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class InvalidPhaseResult(InputRejected):
    """A termination message that is not a phase result."""

    def __init__(self, message: str) -> None:
        super().__init__(PHASE_RESULT.kind, message)


class PhaseResult(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    state: PhaseOutcome
    next_phase: str | None
    agent_decision: str = ""
    outputs: dict[str, Any] = {}
    error: str | None = None

    def to_message(self) -> str:
        """JSON that fits the termination message, shrinking outputs and text if needed.

        Each step keeps less of the outputs' keys, the error and the agent's decision; the
        last one keeps none of them, so the result always fits (a phase name is short).
        """
        message = self.model_dump_json()
        for keep in (1000, 100, 0):
            if len(message.encode()) <= TERMINATION_MESSAGE_LIMIT:
                break
            message = self._shrunk(keep).model_dump_json()
        return message

    def _shrunk(self, keep: int) -> PhaseResult:
        keys = [key[:keep] for key in sorted(self.outputs)[:20]] if keep else []
        return self.model_copy(
            update={
                "outputs": {"truncated": True, "keys": keys},
                "error": self.error[:keep] if self.error else None,
                "agent_decision": self.agent_decision[:keep],
                "next_phase": self.next_phase[:_MAX_PHASE_NAME] if self.next_phase else None,
            }
        )

    @classmethod
    def from_message(cls, message: str) -> PhaseResult:
        """The result a termination message carries, within `api.limits.PHASE_RESULT`'s
        bounds; InvalidPhaseResult, and nothing else, when it carries none."""
        excerpt = message[:200].replace("\n", " ")
        try:
            return cls.model_validate(PHASE_RESULT.parse_object(message))
        except InputRejected as error:
            raise InvalidPhaseResult(f"not a phase result: {excerpt!r}: {error}") from None
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in e['loc']) or 'result'}: {e['msg']}"
                for e in error.errors()[:5]
            )
            raise InvalidPhaseResult(f"not a phase result: {excerpt!r}: {problems}") from None
