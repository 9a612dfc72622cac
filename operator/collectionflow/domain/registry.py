"""The flow registry: which phases a flow type has, in which order, and how they are stored.

A phase result may name its own next phase; when it does not, the registry's order decides.
The child-flow record in the database uses the older application's phase vocabulary, so the
registry also maps each registry phase to the child record's phase and status.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class UnknownFlowType(ValueError):
    """The flow names a flow type the registry does not know."""


class UnknownPhase(ValueError):
    """A phase name (in a spec or a phase result) is not part of the flow type."""


@dataclass(frozen=True)
class PhaseDefinition:
    name: str
    manual: bool = False
    timeout_seconds: int = 600
    retries: int = 2
    child_phase: str | None = None
    child_status: str | None = None

    @property
    def stored_phase(self) -> str:
        """The phase name written to the child-flow record."""
        return self.child_phase or self.name

    @property
    def stored_status(self) -> str:
        """The child-flow record's status while this phase is current."""
        return self.child_status or self.name


@dataclass(frozen=True)
class FlowDefinition:
    """A flow type. With `loops`, a phase's result may name an earlier phase (or itself) as
    the next; spec.maxPhaseRuns bounds how often phases run in all."""

    flow_type: str
    phases: tuple[PhaseDefinition, ...]
    loops: bool = False
    _index: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {p.name: i for i, p in enumerate(self.phases)})

    @property
    def phase_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.phases)

    @property
    def first_phase(self) -> str:
        return self.phases[0].name

    def phase(self, name: str) -> PhaseDefinition:
        try:
            return self.phases[self._index[name]]
        except KeyError:
            raise UnknownPhase(
                f"phase {name!r} is not part of flow type {self.flow_type!r} "
                f"(known: {', '.join(self.phase_names)})"
            ) from None

    def position(self, name: str) -> int:
        """Zero-based index of the phase; raises UnknownPhase."""
        self.phase(name)
        return self._index[name]

    def next_phase_for(self, phase: str) -> str | None:
        """The registry's successor of `phase`, or None when it is the last one."""
        position = self.position(phase)
        return self.phases[position + 1].name if position + 1 < len(self.phases) else None


class CollectionPhase(StrEnum):
    """The phases of the `collection` flow type, named once for the registry and the worker."""

    INITIALIZATION = "initialization"
    PLATFORM_DETECTION = "platform_detection"
    AUTOMATED_COLLECTION = "automated_collection"
    GAP_ANALYSIS = "gap_analysis"
    QUESTIONNAIRE_GENERATION = "questionnaire_generation"
    MANUAL_COLLECTION = "manual_collection"
    SYNTHESIS = "synthesis"


COLLECTION = FlowDefinition(
    flow_type="collection",
    phases=(
        PhaseDefinition(CollectionPhase.INITIALIZATION, timeout_seconds=300),
        PhaseDefinition(CollectionPhase.PLATFORM_DETECTION),
        PhaseDefinition(CollectionPhase.AUTOMATED_COLLECTION, timeout_seconds=1800),
        PhaseDefinition(CollectionPhase.GAP_ANALYSIS),
        PhaseDefinition(CollectionPhase.QUESTIONNAIRE_GENERATION),
        PhaseDefinition(CollectionPhase.MANUAL_COLLECTION, manual=True),
        PhaseDefinition(
            CollectionPhase.SYNTHESIS,
            child_phase="finalization",
            child_status=CollectionPhase.AUTOMATED_COLLECTION,
        ),
    ),
    loops=True,  # gap analysis may send a flow back to collect again
)

FLOW_TYPES: Mapping[str, FlowDefinition] = {COLLECTION.flow_type: COLLECTION}


def flow_definition(flow_type: str) -> FlowDefinition:
    try:
        return FLOW_TYPES[flow_type]
    except KeyError:
        raise UnknownFlowType(
            f"flow type {flow_type!r} is not registered (known: {', '.join(FLOW_TYPES)})"
        ) from None
