"""Which code runs a phase: an installed plug-in first, else a built-in.

A deployment replaces or adds phases without forking the operator: a package declares an
entry point in the group `collectionflow.phases` whose name is the phase and whose value is
a callable `(PhaseContext) -> PhaseResult`, and the worker image that has it installed runs
it. A plug-in wins over the built-in of the same name, so a built-in reference phase can be
swapped for a real one.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import cast

from collectionflow.worker.context import PhaseHandler
from collectionflow.worker.phases import BUILT_IN_FLOW_TYPE, BUILT_IN_PHASES

ENTRY_POINT_GROUP = "collectionflow.phases"


class HandlerLookupError(LookupError):
    """No single usable handler for the phase: none, several, or one that does not load."""


def find_handler(flow_type: str, phase: str) -> PhaseHandler:
    plugin = _plugin(phase)
    if plugin is not None:
        return plugin
    if flow_type == BUILT_IN_FLOW_TYPE and phase in BUILT_IN_PHASES:
        return BUILT_IN_PHASES[phase]
    raise HandlerLookupError(
        f"no handler for phase {phase!r} of flow type {flow_type!r}: no entry point of that "
        f"name in group {ENTRY_POINT_GROUP!r}, and the built-ins of flow type "
        f"{BUILT_IN_FLOW_TYPE!r} are {', '.join(BUILT_IN_PHASES)}"
    )


def _plugin(phase: str) -> PhaseHandler | None:
    candidates = entry_points(group=ENTRY_POINT_GROUP, name=phase)
    if not candidates:
        return None
    if len(candidates) > 1:
        values = ", ".join(sorted(candidate.value for candidate in candidates))
        raise HandlerLookupError(
            f"several entry points in group {ENTRY_POINT_GROUP!r} claim phase {phase!r}: {values}"
        )
    (entry_point,) = candidates
    try:
        loaded = entry_point.load()
    except Exception as error:
        raise HandlerLookupError(
            f"entry point {phase} = {entry_point.value} in group {ENTRY_POINT_GROUP!r} "
            f"does not load: {type(error).__name__}: {error}"
        ) from error
    if not callable(loaded):
        raise HandlerLookupError(
            f"entry point {phase} = {entry_point.value} is a {type(loaded).__name__}, "
            "not a callable (PhaseContext) -> PhaseResult"
        )
    return cast(PhaseHandler, loaded)
