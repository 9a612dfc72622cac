"""The right to act: it lasts the renew deadline after the last renewal, and not a moment more."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest

from collectionflow.runtime.leaderelection import Leadership, NotLeader

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


def test_without_election_a_replica_always_leads() -> None:
    leadership = Leadership()
    assert leadership.leading
    leadership.fence()
    assert leadership.epoch == 1


def test_with_election_a_replica_does_not_act_before_it_holds_the_lease() -> None:
    leadership = Leadership(renew_deadline=10.0)
    assert not leadership.leading
    with pytest.raises(NotLeader):
        leadership.fence()


def test_a_renewal_gives_the_right_to_act_for_the_renew_deadline() -> None:
    leadership = Leadership(renew_deadline=10.0)
    assert leadership.renewed(time.monotonic(), NOW)
    assert leadership.leading
    assert (leadership.epoch, leadership.since) == (1, NOW)
    assert not leadership.renewed(time.monotonic(), NOW), "a renewal is not a new term"
    assert leadership.epoch == 1


def test_the_right_runs_out_by_itself_when_renewals_stop() -> None:
    leadership = Leadership(renew_deadline=10.0)
    leadership.renewed(time.monotonic() - 10.5, NOW)  # the last renewal started 10.5 s ago
    assert not leadership.leading
    with pytest.raises(NotLeader):
        leadership.fence()


async def test_losing_announces_and_a_new_term_is_a_new_epoch() -> None:
    leadership = Leadership(renew_deadline=10.0)
    leadership.renewed(time.monotonic(), NOW)
    announced = leadership.changed
    leadership.lost()
    assert announced.is_set()
    assert not leadership.leading
    assert leadership.renewed(time.monotonic(), NOW)
    assert leadership.epoch == 2


async def test_waiting_ends_when_leading_or_stopped() -> None:
    leadership = Leadership(renew_deadline=10.0)
    stopped = asyncio.Event()
    waiter = asyncio.create_task(leadership.wait_leading(stopped))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    leadership.renewed(time.monotonic(), NOW)
    assert await asyncio.wait_for(waiter, 2.0) is True

    leadership.lost()
    stopped.set()
    assert await asyncio.wait_for(leadership.wait_leading(stopped), 2.0) is False
