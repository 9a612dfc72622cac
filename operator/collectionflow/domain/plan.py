"""A flow's effective plan: the registry's phases with the spec's overrides applied.

This is also where a spec is judged: an unknown flow type, an override naming a phase the
flow type does not have, or parameters over the size limit make the flow invalid, with a
message that says which and why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from collectionflow.api.env import RESERVED_ENV_NAMES, RESERVED_ENV_PREFIX, EnvVar
from collectionflow.api.limits import PARAMETERS, InputRejected
from collectionflow.api.models import CollectionFlowSpec
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
    stall_timeout_seconds: int | None  # the phase's, else the flow's; None: the operator's

    @property
    def built_in(self) -> bool:
        """The built-in worker as it is, which the operator's process may also run: no image,
        command or arguments of its own, no value from a ConfigMap or Secret."""
        return (
            self.image is None
            and self.command is None
            and self.args is None
            and not any(var.value_from for var in self.env)
        )


@dataclass(frozen=True)
class FlowPlan:
    definition: FlowDefinition
    phases: dict[str, PhaseConfig]
    stall_timeout_seconds: int | None = None  # the flow's; None: the operator's

    def phase(self, name: str) -> PhaseConfig:
        self.definition.phase(name)
        return self.phases[name]

    def stall_timeout(self, phase: str | None) -> int | None:
        """Seconds without a heartbeat before `phase` is stalled: the phase's, else the
        flow's; None leaves it to the operator's setting."""
        return self.phase(phase).stall_timeout_seconds if phase else self.stall_timeout_seconds


SIMULATE = "simulate"
_LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
LABEL_KEY = re.compile(rf"([a-z0-9]([-a-z0-9.]{{0,251}}[a-z0-9])?/)?{_LABEL_NAME}")
LABEL_VALUE = re.compile(rf"({_LABEL_NAME})?")


def _reserved(name: str) -> bool:
    return name.startswith(RESERVED_ENV_PREFIX) or name in RESERVED_ENV_NAMES


def plan_for(spec: CollectionFlowSpec, allow_simulation: bool = False) -> FlowPlan:
    """The plan of a spec, or InvalidSpec saying what is wrong with it. `allow_simulation`:
    the operator lets `parameters.simulate` (test and demo knobs) through."""
    try:
        definition = flow_definition(spec.flow_type)
        overrides = {o.name: o for o in spec.phases or ()}
        for name in overrides:
            definition.phase(name)
    except (UnknownPhase, ValueError) as error:
        raise InvalidSpec(str(error)) from None
    try:
        PARAMETERS.check(spec.parameters)
    except InputRejected as error:
        raise InvalidSpec(str(error)) from None
    if SIMULATE in spec.parameters and not allow_simulation:
        raise InvalidSpec(
            "spec.parameters.simulate holds test and demo knobs, and this operator does not "
            "allow simulation (setting operator.allowSimulation)"
        )
    for named in overrides.values():
        reserved = [var.name for var in named.env or () if _reserved(var.name)]
        if reserved:
            raise InvalidSpec(
                f"spec.phases[{named.name}].env sets {', '.join(reserved)}: variables "
                f"starting {RESERVED_ENV_PREFIX} and {', '.join(RESERVED_ENV_NAMES)} are the "
                "worker's own"
            )
    for key, value in (spec.node_selector or {}).items():
        if not LABEL_KEY.fullmatch(key) or not LABEL_VALUE.fullmatch(value):
            raise InvalidSpec(
                f"spec.nodeSelector {key[:80]!r}: {value[:80]!r} is not a node label: a key of "
                "at most 63 characters (with an optional DNS prefix and '/'), and a value of at "
                "most 63 letters, digits, '-', '_' or '.'"
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
            stall_timeout_seconds=(override and override.stall_timeout_seconds)
            or spec.stall_timeout_seconds,
        )
    return FlowPlan(definition, phases, spec.stall_timeout_seconds)
