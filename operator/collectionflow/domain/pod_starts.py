"""Which phase Jobs the operator has not seen start, and when to read their pods. Pure.

No watch follows a pod before it ends: that cost the operator and the apiserver a share of
every transition, for the few pods that do not start. A Job that is not seen to start (no
heartbeat Lease, no pod known to have left Pending, not finished) within `FIRST_READ` of being
seen has its pods read then; while they are still Pending they are read again, ever less
often (the time since the Job was seen, at least `FIRST_READ`, at most `LONGEST_GAP`), so a
pod that an image, the scheduler or a missing Secret key holds is named in the flow's status
within seconds, and one held for an hour costs a read a minute. The Jobs due together are read
together, one request per namespace for up to `BATCH` of them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from collectionflow.domain.slim import JOB_NAME_LABEL

FIRST_READ = dt.timedelta(seconds=5)
LONGEST_GAP = dt.timedelta(seconds=60)
BATCH = 50  # Jobs whose pods one request reads: its label selector names them all
# A label value (the Job controller's `job-name` label is the Job's name).
LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")

Key = tuple[str, str]


def started(pods: Iterable[Mapping[str, Any]]) -> bool:
    """Whether any of a Job's pods left Pending (it runs, or it ended)."""
    return any(pod["status"].get("phase") not in (None, "Pending") for pod in pods)


def pods_by_job(pods: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Pods by the name of their Job (the Job controller's `job-name` label)."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for pod in pods:
        job = ((pod.get("metadata") or {}).get("labels") or {}).get(JOB_NAME_LABEL)
        if isinstance(job, str):
            grouped.setdefault(job, []).append(pod)
    return grouped


def batches(keys: Iterable[Key], size: int = BATCH) -> list[tuple[str, list[str]]]:
    """The Jobs `keys` as reads: by namespace, up to `size` names each, in the order given.
    A name that is no label value cannot stand in a selector with others (the apiserver would
    refuse the whole read for it): it is read alone, and only its own read fails."""
    reads: list[tuple[str, list[str]]] = []
    open_reads: dict[str, list[str]] = {}
    for namespace, name in keys:
        if not LABEL_VALUE.fullmatch(name):
            reads.append((namespace, [name]))
            continue
        names = open_reads.get(namespace)
        if names is None or len(names) >= size:
            names = open_reads[namespace] = []
            reads.append((namespace, names))
        names.append(name)
    return reads


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
