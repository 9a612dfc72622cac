"""Leader election on a Lease, as client-go runs it: one replica acts, the others wait warm.

`Leadership` is the right to act: it runs out by itself `renew_deadline` after the last
renewal that started, so a replica whose election loop is stuck stops acting before anyone
else may take the Lease, and every write is fenced by it. `Elector` is the loop every replica
runs: it reads the Lease every retry period and takes, renews or leaves it as
`runtime.lease` rules, through a `LeaseStore`; on shutdown the leader releases the Lease so
that a successor takes over at its next try. What a change of leadership means (wake every
object, post an Event, count it) is the caller's, told through `on_change`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import random
import time
from collections.abc import Callable
from typing import Any, Protocol

from collectionflow.runtime.lease import (
    LeaseRecord,
    Step,
    Timings,
    claim,
    lease_manifest,
    next_step,
    read_lease,
    release,
)

log = logging.getLogger("collectionflow.leader")


class LeaseConflict(Exception):
    """Another replica wrote the Lease first."""


class LeaseUnavailable(Exception):
    """The Lease could not be read or written now (the API answered with an error, or not)."""


class LeaseStore(Protocol):
    async def get(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def write(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Create or replace (at the version read) the Lease; LeaseConflict when another
        write came first, LeaseUnavailable when the API could not take it."""
        ...


class NotLeader(Exception):
    """This replica does not hold the leader Lease (any more): it must not act."""


class Leadership:
    """Whether this replica may act: only while it holds the leader Lease, renewed in time.

    The right to act runs out by itself `renew_deadline` after the last renewal that started,
    on the monotonic clock, even if the election loop is stuck: before another replica may take
    the Lease (`lease_duration` after it last saw it change). Without election it never runs out.
    """

    def __init__(self, renew_deadline: float | None = None) -> None:
        self.renew_deadline = renew_deadline
        self._valid_until = -math.inf if renew_deadline is not None else math.inf
        self.since = None if renew_deadline is not None else dt.datetime.now(dt.UTC)
        self.epoch = 0 if renew_deadline is not None else 1
        self.changed = asyncio.Event()

    @property
    def leading(self) -> bool:
        return time.monotonic() < self._valid_until

    def fence(self) -> None:
        """Raise NotLeader unless this replica may act now; called before every write."""
        if not self.leading:
            raise NotLeader("this replica is not the leader")

    def renewed(self, started: float, now: dt.datetime) -> bool:
        """A renewal (or acquisition) that started at monotonic `started` succeeded; True when
        it made this replica the leader."""
        assert self.renew_deadline is not None
        became = not self.leading
        self._valid_until = started + self.renew_deadline
        if became:
            self.epoch += 1
            self.since = now
            self._announce()
        return became

    def lost(self) -> None:
        self._valid_until = -math.inf
        self._announce()

    def _announce(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    async def wait_leading(self, stopped: asyncio.Event) -> bool:
        """Wait until this replica leads (True) or `stopped` is set (False)."""
        while not self.leading:
            if stopped.is_set():
                return False
            changed = asyncio.ensure_future(self.changed.wait())
            halted = asyncio.ensure_future(stopped.wait())
            try:
                await asyncio.wait(
                    {changed, halted}, timeout=1.0, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                changed.cancel()
                halted.cancel()
        return True


class Elector:
    """One replica's side of the election."""

    def __init__(
        self,
        leadership: Leadership,
        store: LeaseStore,
        namespace: str,
        name: str,
        identity: str,
        timings: Timings,
        on_change: Callable[[bool], None],
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.leadership = leadership
        self.store = store
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.timings = timings
        self.on_change = on_change
        self.clock = clock
        self.observed: LeaseRecord | None = None
        self.observed_at = time.monotonic()
        self.was_leading = False

    async def run(self) -> None:
        """Try, renew or wait every retry period, until cancelled."""
        period = self.timings.retry_period
        while True:
            await self.try_once()
            self.note_change()
            # Followers jitter their tries, as client-go does, so they do not write at once.
            leading = self.leadership.leading
            await asyncio.sleep(period if leading else period * random.uniform(1.0, 1.2))

    async def try_once(self) -> None:
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.timings.retry_period):
                body = await self.store.get(self.namespace, self.name)
            record = None if body is None else read_lease(body)
            if record is None or not record.same_as(self.observed):
                self.observed, self.observed_at = record, started
            step = next_step(record, self.identity, started - self.observed_at)
            if step is Step.WAIT:
                if self.leadership.leading:
                    self.leadership.lost()  # someone else holds it: stop at once
                return
            spec = claim(record, self.identity, self.clock(), self.timings)
            manifest = lease_manifest(self.namespace, self.name, spec, record)
            async with asyncio.timeout(self.timings.retry_period):
                written = await self.store.write(manifest)
        except LeaseConflict:
            return  # another replica wrote first; read again at the next try
        except (LeaseUnavailable, TimeoutError) as error:
            log.warning("leader election: %s", error)
            return
        self.observed, self.observed_at = read_lease(written), started
        self.leadership.renewed(started, self.clock())

    def note_change(self) -> None:
        """Tell `on_change` when this replica took, or lost, the lead."""
        leading = self.leadership.leading
        if leading == self.was_leading:
            return
        self.was_leading = leading
        if not leading:
            self.leadership.lost()
        self.on_change(leading)

    async def release(self) -> bool:
        """Stop acting, then free the Lease for a successor (on shutdown); True when freed."""
        if not self.leadership.leading:
            return False
        self.leadership.lost()
        record = self.observed
        if record is None or record.holder != self.identity:
            return False
        manifest = lease_manifest(self.namespace, self.name, release(record, self.clock()), record)
        try:
            async with asyncio.timeout(self.timings.retry_period):
                await self.store.write(manifest)
        except (LeaseConflict, LeaseUnavailable, TimeoutError) as error:
            log.warning("could not release the leader Lease: %s", error)
            return False
        return True
