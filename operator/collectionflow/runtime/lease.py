"""Leader election on a `coordination.k8s.io/v1` Lease: the rules, as client-go applies them.

Every replica tries every `retry_period`. A Lease that has not changed for its
`leaseDurationSeconds`, as this replica observed it on its own monotonic clock (so clock skew
between replicas does not matter), is free, and the first replica to write it (the apiserver's
resourceVersion check settles races) holds it. The holder renews it every `retry_period`; if it
has not renewed for `renew_deadline` it stops acting, which is before anyone else may take the
Lease (`renew_deadline` < `lease_duration`). A holder that shuts down releases the Lease, so a
successor takes it at its next try instead of waiting out the duration.

Pure: it reads and writes Lease bodies as the API returns them; `runtime.leaderelection`
does the I/O.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from collectionflow.api.kube import micro_time


class ElectionError(ValueError):
    """The election's timings cannot work together."""


@dataclass(frozen=True)
class Timings:
    """Kubernetes' own controllers use 15 s, 10 s and 2 s."""

    lease_duration: float
    renew_deadline: float
    retry_period: float

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ElectionError(
                "leader election needs 0 < retry period < renew deadline < lease duration, "
                f"got {self.retry_period:g}s, {self.renew_deadline:g}s, "
                f"{self.lease_duration:g}s"
            )


@dataclass(frozen=True)
class LeaseRecord:
    """The election's state, as the Lease says it."""

    holder: str
    renewed_at: dt.datetime | None
    acquired_at: dt.datetime | None
    duration: float
    transitions: int
    resource_version: str | None

    def free(self, unchanged_for: float) -> bool:
        """Free to take: nobody holds it, or it has not changed for its duration (seconds this
        replica has seen it unchanged)."""
        return not self.holder or unchanged_for >= self.duration

    def same_as(self, other: LeaseRecord | None) -> bool:
        """The same write of the Lease (a renewal changes its resourceVersion)."""
        return other is not None and (self.resource_version, self.holder) == (
            other.resource_version,
            other.holder,
        )


class Step(StrEnum):
    CREATE = "create"  # there is no Lease yet
    ACQUIRE = "acquire"  # the Lease is free: take it
    RENEW = "renew"  # we hold it
    WAIT = "wait"  # someone else holds it


def _time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def read_lease(body: dict[str, Any]) -> LeaseRecord:
    spec = body.get("spec") or {}
    return LeaseRecord(
        holder=str(spec.get("holderIdentity") or ""),
        renewed_at=_time(spec.get("renewTime")),
        acquired_at=_time(spec.get("acquireTime")),
        duration=float(spec.get("leaseDurationSeconds") or 0),
        transitions=int(spec.get("leaseTransitions") or 0),
        resource_version=(body.get("metadata") or {}).get("resourceVersion"),
    )


def next_step(record: LeaseRecord | None, identity: str, unchanged_for: float) -> Step:
    """What to do with the Lease as read, seen unchanged for `unchanged_for` seconds."""
    if record is None:
        return Step.CREATE
    if record.holder == identity:
        return Step.RENEW
    if record.free(unchanged_for):
        return Step.ACQUIRE
    return Step.WAIT


def claim(
    record: LeaseRecord | None, identity: str, now: dt.datetime, timings: Timings
) -> dict[str, Any]:
    """The Lease spec that makes (or keeps) `identity` the holder from `now`."""
    keeps = record is not None and record.holder == identity
    acquired = record.acquired_at if keeps and record is not None else now
    transitions = 0 if record is None else record.transitions + (0 if keeps else 1)
    return {
        "holderIdentity": identity,
        "leaseDurationSeconds": int(timings.lease_duration),
        "acquireTime": micro_time(acquired or now),
        "renewTime": micro_time(now),
        "leaseTransitions": transitions,
    }


def release(record: LeaseRecord, now: dt.datetime) -> dict[str, Any]:
    """The Lease spec a holder leaves behind when it shuts down: free at once."""
    return {
        "holderIdentity": None,
        "leaseDurationSeconds": 1,
        "acquireTime": None,
        "renewTime": micro_time(now),
        "leaseTransitions": record.transitions,
    }


def lease_manifest(
    namespace: str, name: str, spec: dict[str, Any], record: LeaseRecord | None
) -> dict[str, Any]:
    """The Lease to write: created when there is none, else replaced at the version read, so
    that of two replicas writing at once only one succeeds."""
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if record is not None and record.resource_version:
        metadata["resourceVersion"] = record.resource_version
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata,
        "spec": spec,
    }


def no_leader(record: LeaseRecord | None, name: str, now: dt.datetime) -> str | None:
    """What the leader Lease says when no replica leads (None: one does, or no election is
    used: no Lease)."""
    if record is None:
        return None
    if not record.holder:
        return f"no operator is leading: Lease {name} is released and nobody took it"
    if record.renewed_at is None:
        return None
    expired = now - (record.renewed_at + dt.timedelta(seconds=record.duration))
    if expired.total_seconds() <= 0:
        return None
    return (
        f"no operator is leading: Lease {name} expired {expired.total_seconds():.0f}s ago "
        f"(last held by {record.holder}); nothing moves until an operator leads"
    )
