"""Demo and failure knobs: make any phase slow, hung, failing or mis-routed, on request.

The operator's failure handling (retries, stall detection, rejecting an unknown next
phase) can only be tested end to end if a phase can be made to misbehave on purpose. The
knobs live in the flow's own parameters, so a test or a demo needs nothing but a spec:

    parameters:
      simulate:
        gap_analysis: {sleepSeconds: 5, failAttempts: 1}

Per phase, `parameters["simulate"][<phase>]` may hold:

- `sleepSeconds`: work that long first, heart-beating all along.
- `hangSeconds`: then stop heart-beating and keep running that long: a hung worker.
- `hangAttempts`: hang only while the attempt is at most N, so a recovery's attempt works.
- `silent`: never heart-beat at all (true or false), as a worker that cannot reach the API;
  with `hangAttempts`, only those attempts.
- `exitCode`: fail with that exit code (1-255) and a failed result, without running the phase.
- `failAttempts`: fail only while the attempt is at most N (with `exitCode`, or 1), so a
  retry succeeds.
- `nextPhase`: force the result's next phase; an unknown name tests that the operator
  rejects it.

They apply to every phase, built-in or plug-in, because the runner applies them around the
handler: only the runner controls the heartbeat and the exit code.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from collectionflow.api.contract import json_type_name
from collectionflow.domain.results import PhaseResult
from collectionflow.worker.context import PhaseContext
from collectionflow.worker.heartbeat import Heartbeat

log = logging.getLogger(__name__)

KNOBS = (
    "sleepSeconds",
    "hangSeconds",
    "hangAttempts",
    "silent",
    "exitCode",
    "failAttempts",
    "nextPhase",
)


class InvalidSimulation(ValueError):
    """`parameters.simulate` asks for something the simulation cannot do."""


@dataclass(frozen=True)
class Simulation:
    sleep_seconds: float = 0.0
    hang_seconds: float = 0.0
    silent: bool = False
    exit_code: int | None = None
    fail_attempts: int | None = None
    next_phase: str | None = None

    @classmethod
    def for_context(cls, ctx: PhaseContext) -> Simulation:
        """The knobs set for this phase; none when `parameters.simulate` does not name it."""
        simulate = ctx.parameters.get("simulate")
        if simulate is None:
            return cls()
        if not isinstance(simulate, dict):
            raise InvalidSimulation(
                f"parameters.simulate must be an object, got {json_type_name(simulate)}"
            )
        knobs = simulate.get(ctx.phase)
        if knobs is None:
            return cls()
        where = f"parameters.simulate.{ctx.phase}"
        if not isinstance(knobs, dict):
            raise InvalidSimulation(f"{where} must be an object, got {json_type_name(knobs)}")
        unknown = sorted(set(knobs) - set(KNOBS))
        if unknown:
            raise InvalidSimulation(
                f"{where} has unknown knobs {', '.join(unknown)} (known: {', '.join(KNOBS)})"
            )
        hangs = ctx.attempt <= (_integer(knobs, "hangAttempts", where, 0, None) or ctx.attempt)
        silent = knobs.get("silent", False)
        if not isinstance(silent, bool):
            raise InvalidSimulation(f"{where}.silent must be true or false")
        return cls(
            sleep_seconds=_seconds(knobs, "sleepSeconds", where),
            hang_seconds=_seconds(knobs, "hangSeconds", where) if hangs else 0.0,
            silent=silent and hangs,
            exit_code=_integer(knobs, "exitCode", where, 1, 255),
            fail_attempts=_integer(knobs, "failAttempts", where, 0, None),
            next_phase=_phase_name(knobs, where),
        )

    def failure_exit_code(self, attempt: int) -> int | None:
        """The exit code `attempt` must fail with, or None when it runs normally."""
        if self.fail_attempts is not None:
            return (self.exit_code or 1) if attempt <= self.fail_attempts else None
        return self.exit_code

    def work(self, heartbeat: Heartbeat, sleep: Callable[[float], None] = time.sleep) -> None:
        """Sleep while heart-beating, then hang without heart-beating, as configured."""
        if self.sleep_seconds:
            log.info("simulation: working for %gs", self.sleep_seconds)
            sleep(self.sleep_seconds)
        if self.hang_seconds:
            log.info("simulation: hanging for %gs without heart-beating", self.hang_seconds)
            heartbeat.pause()
            sleep(self.hang_seconds)

    def steer(self, result: PhaseResult) -> PhaseResult:
        """The result with the forced next phase, if one is configured."""
        if self.next_phase is None:
            return result
        log.info("simulation: forcing next phase %r", self.next_phase)
        return result.model_copy(update={"next_phase": self.next_phase})


def _seconds(knobs: Mapping[str, Any], key: str, where: str) -> float:
    value = knobs.get(key, 0)
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value < 0
    ):
        raise InvalidSimulation(f"{where}.{key} must be a number of seconds, 0 or more")
    return float(value)


def _integer(
    knobs: Mapping[str, Any], key: str, where: str, low: int, high: int | None
) -> int | None:
    value = knobs.get(key)
    if value is None:
        return None
    if type(value) is not int or value < low or (high is not None and value > high):
        limits = f"from {low} to {high}" if high is not None else f"{low} or more"
        raise InvalidSimulation(f"{where}.{key} must be an integer {limits}")
    return value


def _phase_name(knobs: Mapping[str, Any], where: str) -> str | None:
    value = knobs.get("nextPhase")
    if value is not None and (not isinstance(value, str) or not value):
        raise InvalidSimulation(f"{where}.nextPhase must be a phase name")
    return value
