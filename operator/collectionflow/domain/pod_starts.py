"""Which phase Jobs the operator has not seen start, and when to read their pods. Pure.

No watch follows a pod before it ends: that cost the operator and the apiserver a share of
every transition, for the few pods that do not start. A Job that is not seen to start (no
heartbeat Lease, no pod known to have left Pending, not finished) within `FIRST_READ` of being
seen has its pods read then; while they are still Pending they are read again, ever less
often (the time since the Job was seen, at least `FIRST_READ`, at most `LONGEST_GAP`), so a
pod that an image, the scheduler or a missing Secret key holds is named in the flow's status
within seconds, and one held for an hour costs a read a minute.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

FIRST_READ = dt.timedelta(seconds=5)
LONGEST_GAP = dt.timedelta(seconds=60)

Key = tuple[str, str]


def started(pods: Iterable[Mapping[str, Any]]) -> bool:
    """Whether any of a Job's pods left Pending (it runs, or it ended)."""
    return any(pod["status"].get("phase") not in (None, "Pending") for pod in pods)


def next_read(since: dt.datetime, now: dt.datetime) -> dt.datetime:
    """When to read a Job's pods again that were still Pending at `now`, the Job first seen
    unstarted at `since`."""
    return now + min(max(now - since, FIRST_READ), LONGEST_GAP)


@dataclass
class Unstarted:
    """The Jobs not seen to start, each with when it was first seen so and when its pods are
    read next."""

    _since: dict[Key, dt.datetime] = field(default_factory=dict)
    _due: dict[Key, dt.datetime] = field(default_factory=dict)

    def __contains__(self, key: object) -> bool:
        return key in self._since

    def add(self, key: Key, now: dt.datetime) -> None:
        if key not in self._since:
            self._since[key] = now
            self._due[key] = now + FIRST_READ

    def discard(self, key: Key) -> None:
        self._since.pop(key, None)
        self._due.pop(key, None)

    def due(self, now: dt.datetime, most: int) -> list[Key]:
        """The Jobs whose pods are due to be read at `now`, the longest due first, at most
        `most` of them."""
        keys = sorted((due, key) for key, due in self._due.items() if due <= now)
        return [key for _, key in keys[:most]]

    def read(self, key: Key, now: dt.datetime) -> None:
        """Its pods were read at `now` and none had started."""
        since = self._since.get(key)
        if since is not None:
            self._due[key] = next_read(since, now)
