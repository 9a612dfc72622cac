"""A flow's effective plan: the registry's phases with the spec's overrides applied.

This is also where a spec is judged: an unknown flow type, an override naming a phase the
flow type does not have, or parameters over the size limit make the flow invalid, with a
message that says which and why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from collectionflow.api.models import MAX_PARAMETERS_BYTES, CollectionFlowSpec, EnvVar
from collectionflow.domain.registry import FlowDefinition, UnknownPhase, flow_definition


class InvalidSpec(ValueError):
    """The flow's spec cannot be run; the message tells the user what to fix."""


@dataclass(frozen=True)
class PhaseConfig:
    name: str
    manual: bool
    timeout_seconds: int
    retries: int
    image: str | None
    command: tuple[str, ...] | None
    args: tuple[str, ...] | None
    env: tuple[EnvVar, ...]
    stall_timeout_seconds: int | None


@dataclass(frozen=True)
class FlowPlan:
    definition: FlowDefinition
    phases: dict[str, PhaseConfig]

    def phase(self, name: str) -> PhaseConfig:
        self.definition.phase(name)
        return self.phases[name]


def plan_for(spec: CollectionFlowSpec) -> FlowPlan:
    """The plan of a spec, or InvalidSpec saying what is wrong with it."""
    try:
        definition = flow_definition(spec.flow_type)
        overrides = {o.name: o for o in spec.phases or ()}
        for name in overrides:
            definition.phase(name)
    except (UnknownPhase, ValueError) as error:
        raise InvalidSpec(str(error)) from None
    size = len(json.dumps(spec.parameters, separators=(",", ":")).encode())
    if size > MAX_PARAMETERS_BYTES:
        raise InvalidSpec(
            f"spec.parameters is {size} bytes as JSON; the limit is {MAX_PARAMETERS_BYTES}"
        )
    phases: dict[str, PhaseConfig] = {}
    for base in definition.phases:
        override = overrides.get(base.name)
        phases[base.name] = PhaseConfig(
            name=base.name,
            manual=base.manual if override is None or override.manual is None else override.manual,
            timeout_seconds=(override and override.timeout_seconds) or base.timeout_seconds,
            retries=base.retries
            if override is None or override.retries is None
            else override.retries,
            image=override.image if override else None,
            command=tuple(override.command) if override and override.command else None,
            args=tuple(override.args) if override and override.args is not None else None,
            env=tuple(override.env or ()) if override else (),
            stall_timeout_seconds=override.stall_timeout_seconds if override else None,
        )
    return FlowPlan(definition=definition, phases=phases)
