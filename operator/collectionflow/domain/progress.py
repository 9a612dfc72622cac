"""How far a flow is: a 0-100 integer and a "completed/total" string.

Progress counts by the registry position of the last completed phase, so a phase skipped
by a result's `next_phase` still counts as passed. Only a succeeded flow shows 100.
"""

from __future__ import annotations

from dataclasses import dataclass

from collectionflow.domain.registry import FlowDefinition


@dataclass(frozen=True)
class Progress:
    percentage: int
    text: str


def progress_after(definition: FlowDefinition, completed_phase: str | None) -> Progress:
    """Progress once `completed_phase` has succeeded (None: nothing completed yet)."""
    total = len(definition.phases)
    done = 0 if completed_phase is None else definition.position(completed_phase) + 1
    return Progress(percentage=min(99, (100 * done) // total), text=f"{done}/{total}")


def progress_succeeded(definition: FlowDefinition) -> Progress:
    total = len(definition.phases)
    return Progress(percentage=100, text=f"{total}/{total}")
