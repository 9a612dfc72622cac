"""How often the operator reads a flow type's phase durations for its estimated completion
times: every `PARTIAL_REFRESH_SECONDS` while an automatic phase of the type has no run yet,
every `REFRESH_SECONDS` once each has one."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from collectionflow.controller.eta import PARTIAL_REFRESH_SECONDS, REFRESH_SECONDS, Durations
from collectionflow.db.repository import FlowRepository
from collectionflow.domain.registry import flow_definition
from db.builders import new_ref, run_for

pytestmark = pytest.mark.db


async def test_durations_are_read_again_sooner_while_the_type_lacks_runs(
    repository: FlowRepository,
) -> None:
    definition = dataclasses.replace(
        flow_definition("collection"), flow_type=f"eta-{uuid.uuid4().hex[:8]}"
    )
    ref = dataclasses.replace(new_ref(), flow_type=definition.flow_type)
    await repository.ensure_flow(ref)
    attempts = {phase.name: 0 for phase in definition.phases}

    async def finish(phase: str, seconds: float) -> None:
        attempts[phase] += 1
        await run_for(repository, ref, phase, attempts[phase], seconds)

    now = [0.0]
    durations = Durations(clock=lambda: now[0])
    automatic = [phase.name for phase in definition.phases if not phase.manual]

    await finish(automatic[0], 10)
    assert (await durations.of(repository, definition))[automatic[0]].runs == 1
    await finish(automatic[0], 20)
    now[0] = PARTIAL_REFRESH_SECONDS - 1
    assert (await durations.of(repository, definition))[automatic[0]].runs == 1, "kept"
    now[0] = PARTIAL_REFRESH_SECONDS
    assert (await durations.of(repository, definition))[automatic[0]].runs == 2, "read again"

    for phase in automatic[1:]:
        await finish(phase, 30)
    now[0] = 2 * PARTIAL_REFRESH_SECONDS
    whole = await durations.of(repository, definition)
    assert set(automatic) <= set(whole)
    await finish(automatic[0], 40)
    now[0] += REFRESH_SECONDS - 1
    assert (await durations.of(repository, definition))[automatic[0]].runs == 2, "kept longer"
    now[0] += 1
    assert (await durations.of(repository, definition))[automatic[0]].runs == 3
