"""What a phase reports back: its outcome and, always, the phase that should come next.

The worker writes a `PhaseResult` as JSON into the container's termination message; the
operator parses it back. The kubelet keeps at most 4096 bytes of a termination message, so
encoding shrinks the outputs rather than ever producing a result that would be cut mid-JSON.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

TERMINATION_MESSAGE_LIMIT = 4096


class PhaseOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class InvalidPhaseResult(ValueError):
    """A termination message that is not a phase result."""


class PhaseResult(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    state: PhaseOutcome
    next_phase: str | None
    agent_decision: str = ""
    outputs: dict[str, Any] = {}
    error: str | None = None

    def to_message(self) -> str:
        """JSON that fits the termination message, shrinking outputs and error if needed."""
        message = self.model_dump_json()
        if len(message.encode()) <= TERMINATION_MESSAGE_LIMIT:
            return message
        shrunk = self.model_copy(
            update={
                "outputs": {"truncated": True, "keys": sorted(self.outputs)[:20]},
                "error": self.error[:1000] if self.error else None,
            }
        )
        return shrunk.model_dump_json()

    @classmethod
    def from_message(cls, message: str) -> PhaseResult:
        try:
            return cls.model_validate(json.loads(message))
        except (json.JSONDecodeError, ValidationError) as error:
            excerpt = message[:200].replace("\n", " ")
            raise InvalidPhaseResult(f"not a phase result: {excerpt!r}: {error}") from None
