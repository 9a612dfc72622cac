"""What the operator knows from its watches: flows, phase Jobs, their finished pods (and the
pods it read itself) and heartbeat Leases.

Pure: the controller feeds it the bodies its watches deliver and reads decisions' evidence
back. Only the fields the decisions use are kept (`domain.slim`), so 10,000 stored flows cost
little memory.

Each `observe_*` says whether the change matters to the flow, so that the flow is woken only
when something it decides on changed:
- a flow: its generation, our annotations, its status (written by someone else), deletion;
- a Job: a condition coming or going (a pod's end is always followed by one);
- a pod or a Lease: never. A finished pod holds the phase's result, read when its Job's
  condition wakes the flow; otherwise pods and Leases are the stall sweep's evidence (a Lease
  going stale, a Job with neither a heartbeat nor a started pod), judged by time.

A Job not seen to start (no heartbeat Lease, no pod known to have left Pending) is kept in
`unstarted` (`domain.pod_starts`) until it does; its pods are read then and again while it
is so (`controller.pod_starts`), and `pods_read` says which flow to wake when what holds them
changed.

The operator's own status writes come back as watch events. `wrote_flow` records the
resourceVersion the write returned; the event carrying it is recognised and wakes nobody, and
older events still in flight are not allowed to overwrite the newer body.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from collectionflow.api.names import (
    LABEL_FLOW_UID,
)
from collectionflow.domain.pod_starts import Unstarted, started
from collectionflow.domain.slim import (
    JOB_NAME_LABEL,
    finished,
    flow_fingerprint,
    holds,
    is_older,
    job_fingerprint,
    object_key,
    older_job,
    slim_flow,
    slim_job,
    slim_lease,
    slim_pod,
)
from collectionflow.domain.view import has_work, waits_quietly

Body = Mapping[str, Any]
DELETED = "DELETED"


@dataclass
class WatchCache:
    flows: dict[str, dict[str, Any]] = field(default_factory=dict)
    jobs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    pods: dict[tuple[str, str], dict[str, dict[str, Any]]] = field(default_factory=dict)
    leases: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    _written: dict[str, tuple[str, bool]] = field(default_factory=dict)
    _active: set[str] = field(default_factory=set)
    _record: dict[str, dict[str, Any]] = field(default_factory=dict)
    _foreign: set[str] = field(default_factory=set)
    _finished_seen: dict[tuple[str, str], dt.datetime] = field(default_factory=dict)
    unstarted: Unstarted = field(default_factory=Unstarted)

    # Flows

    def _store(self, uid: str, flow: dict[str, Any], own: bool = False) -> None:
        self.flows[uid] = flow
        status = flow["status"]
        if own or uid not in self._record:
            self._record[uid] = status  # the operator's last write, or the first one seen
            if own:
                # Written at the resourceVersion it was decided on: it supersedes whatever
                # came before, the watch event of this very write among it (which may arrive
                # before the write's response, and looked foreign then).
                self._foreign.discard(uid)
        elif status != self._record[uid]:
            self._foreign.add(uid)
        if uid in self._foreign or has_work(flow):
            self._active.add(uid)
        else:
            self._active.discard(uid)

    def _drop(self, uid: str) -> dict[str, Any] | None:
        self._written.pop(uid, None)
        self._active.discard(uid)
        self._record.pop(uid, None)
        self._foreign.discard(uid)
        return self.flows.pop(uid, None)

    def needs_work(self, uid: str) -> bool:
        """Whether the flow needs a reconciler: it has work (`has_work`) and does not wait
        quietly for its user (`waits_quietly`), or someone other than the operator changed
        its status, which is put back even on a flow at rest."""
        flow = self.flows.get(uid)
        if flow is None:
            return False
        return uid in self._foreign or (has_work(flow) and not waits_quietly(flow))

    def status_record(self, uid: str) -> dict[str, Any] | None:
        """The status as the operator last wrote it, when someone else has written another
        since (None: the status is the operator's own)."""
        return self._record.get(uid) if uid in self._foreign else None

    def adopt_statuses(self) -> None:
        """Taking over the lead: the statuses now stored are the previous leader's writes,
        the record to keep from here on; none is someone else's. (A standby sees the leader's
        writes as not its own; without this it would put back what it saw first.)"""
        for uid, flow in self.flows.items():
            self._record[uid] = flow["status"]
        self._foreign.clear()

    def status_restored(self, uid: str) -> None:
        self._foreign.discard(uid)

    def observe_flow(self, event_type: str | None, body: Body) -> bool:
        """Take a flow's watch event; True when the flow should be woken."""
        meta = body.get("metadata") or {}
        uid = meta.get("uid", "")
        if event_type == DELETED:
            return self._drop(uid) is not None
        version = meta.get("resourceVersion")
        written, own = self._written.get(uid) or (None, False)
        if written is not None:
            if version == written:
                del self._written[uid]
                self._store(uid, slim_flow(body), own=own)
                return False
            if is_older(version, written):
                return False
            del self._written[uid]
        flow = slim_flow(body)
        previous = self.flows.get(uid)
        self._store(uid, flow)
        return previous is None or flow_fingerprint(previous) != flow_fingerprint(flow)

    def wrote_flow(self, body: Body, status: bool = True) -> None:
        """The operator wrote the flow; `body` is what the API returned. `status`: the write
        was of the status, which becomes the operator's record of it."""
        uid = body["metadata"]["uid"]
        self._store(uid, slim_flow(body), own=status)
        self._written[uid] = (body["metadata"]["resourceVersion"], status)

    def refresh_flow(self, body: Body) -> None:
        """The flow as just read from the API: newer than anything in flight."""
        uid = body["metadata"]["uid"]
        self._store(uid, slim_flow(body))
        self._written.pop(uid, None)

    def flow(self, uid: str) -> dict[str, Any] | None:
        return self.flows.get(uid)

    def forget_flow(self, uid: str) -> None:
        """The flow is gone: drop all that is known of it."""
        self._drop(uid)

    def stale_flow(self, uid: str) -> None:
        """The flow changed since it was read (a write of the operator's met a conflict): the
        next read goes to the API. The record of its status is kept, so that a status someone
        else wrote in between is still put back rather than taken as the record."""
        self.flows.pop(uid, None)
        self._written.pop(uid, None)
        self._active.discard(uid)

    def active_flows(self) -> list[dict[str, Any]]:
        """The flows with work to do (`has_work`): what the stall sweep goes over, so its cost
        follows them and not the flows at rest."""
        return [self.flows[uid] for uid in self._active]

    # Jobs, pods, Leases

    def observe_job(self, event_type: str | None, body: Body, now: dt.datetime) -> bool:
        """Take a Job's watch event (or re-listing); True when its flow should be woken. The
        moment a watch first shows the Job finished is kept (`finished_seen_at`)."""
        key = object_key(body)
        previous = self.jobs.get(key)
        if event_type == DELETED:
            self._forget_job(key)
            return previous is not None
        job = slim_job(body)
        if previous is not None and older_job(job, previous):
            return False
        self.jobs[key] = job
        changed = previous is None or job_fingerprint(previous) != job_fingerprint(job)
        if changed and finished(job):
            self._finished_seen.setdefault(key, now)
        self._track_start(key, now)
        return changed

    def keep_jobs(self, listed: set[tuple[str, str]], namespace: str | None) -> None:
        """A re-list of the Jobs (of `namespace`, or all) ended: forget the ones it lacked,
        with their pods and Leases; they were deleted while the watch was away."""
        gone = [
            key
            for key in self.jobs
            if key not in listed and (namespace is None or key[0] == namespace)
        ]
        for key in gone:
            self._forget_job(key)

    def _forget_job(self, key: tuple[str, str]) -> None:
        self.jobs.pop(key, None)
        self.pods.pop(key, None)
        self.leases.pop(key, None)
        self._finished_seen.pop(key, None)
        self.unstarted.discard(key)

    def finished_seen_at(self, namespace: str, name: str) -> dt.datetime | None:
        """When a watch event or a re-listing first showed the Job finished (None: not so)."""
        return self._finished_seen.get((namespace, name))

    def put_job(self, body: Body | None, namespace: str, name: str) -> bool:
        """A Job the operator created or read itself (None: it does not exist); True when it
        shows the Job finished and nothing known did before. The watch event saying so may
        come later and then changes nothing, so the caller must wake the flow itself. A short
        Job can also finish, and its watch say so, before the response creating it is
        handled: a newer watched copy is kept."""
        if body is None:
            self.jobs.pop((namespace, name), None)
            return False
        job, previous = slim_job(body), self.jobs.get((namespace, name))
        if previous is not None and older_job(job, previous):
            return False
        self.jobs[(namespace, name)] = job
        if finished(job):
            self.unstarted.discard((namespace, name))
        return finished(job) and (previous is None or not finished(previous))

    def job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.jobs.get((namespace, name))

    def observe_pod(self, event_type: str | None, body: Body) -> None:
        meta = body.get("metadata") or {}
        job = (meta.get("labels") or {}).get(JOB_NAME_LABEL)
        if not job:
            return
        key = (meta.get("namespace", ""), job)
        self.unstarted.discard(key)  # it ended
        pods = self.pods.setdefault(key, {})
        if event_type == DELETED:
            pods.pop(meta.get("name", ""), None)
        else:
            pod = slim_pod(body)
            pods[pod["metadata"]["name"]] = pod

    def put_pods(self, namespace: str, job: str, pods: list[dict[str, Any]]) -> None:
        """A Job's pods as the operator read them (or runs them in process)."""
        key = (namespace, job)
        self.pods[key] = {p["metadata"]["name"]: slim_pod(p) for p in pods}
        if started(self.pods[key].values()):
            self.unstarted.discard(key)

    def pods_read(
        self, namespace: str, job: str, pods: list[dict[str, Any]], now: dt.datetime
    ) -> str | None:
        """The pods of a Job not seen to start, read at `now` (`domain.pod_starts`); the uid
        of the flow to wake when what holds them changed (a waiting reason, the scheduler's
        verdict, or nothing any more). A pod read running that nothing held wakes nobody; a
        Job deleted while its pods were read is not brought back."""
        key = (namespace, job)
        if key not in self.jobs:
            return None
        before = _holding(self.pods.get(key, {}).values())
        self.put_pods(namespace, job, pods)
        if key in self.unstarted:
            self.unstarted.read(key, now)
        if _holding(self.pods[key].values()) == before:
            return None
        labels = (self.jobs.get(key) or {"metadata": {}})["metadata"].get("labels") or {}
        return str(labels.get(LABEL_FLOW_UID) or "") or None

    def _track_start(self, key: tuple[str, str], now: dt.datetime) -> None:
        """Whether the Job is one not seen to start (`domain.pod_starts`)."""
        job = self.jobs.get(key)
        if (
            job is None
            or finished(job)
            or key in self.leases
            or started(self.pods.get(key, {}).values())
        ):
            self.unstarted.discard(key)
        else:
            self.unstarted.add(key, now)

    def job_pods(self, namespace: str, job: str) -> list[dict[str, Any]] | None:
        """The Job's pods as watched; None when none was ever seen."""
        pods = self.pods.get((namespace, job))
        return list(pods.values()) if pods else None

    def observe_lease(self, event_type: str | None, body: Body) -> None:
        meta = body.get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""))
        if event_type == DELETED:
            self.leases.pop(key, None)
        else:
            self.leases[key] = slim_lease(body)
            self.unstarted.discard(key)  # its worker beats

    def lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.leases.get((namespace, name))


def _holding(pods: Iterable[Mapping[str, Any]]) -> tuple[tuple[Any, ...], ...]:
    """What holds each of a Job's pods that something holds (`domain.slim.holds`)."""
    held = ((pod["metadata"]["name"], holds(pod)) for pod in pods)
    return tuple(sorted((name, what) for name, what in held if what))
