"""Proof of life for a running phase: renew the attempt's Lease from a background thread.

A Job that is running says nothing about whether its phase makes progress: a worker can
hang forever inside a healthy pod. The operator therefore watches `spec.renewTime` of the
Lease named after the Job, and the worker renews it every `heartbeat_seconds` for as long
as the phase runs. Renewal failures (API down, a conflict, missing RBAC) are logged and
tried again at the next beat: a heartbeat problem must never fail a phase that works.

The worker creates the Lease at its first beat (`api.contract.heartbeat_lease`), owned by its
Job, whose uid the downward API hands it (`COLLECTIONFLOW_JOB_UID`), so the Lease is collected
with the Job. Until then the operator's stall rules go by the flow's `lastProgressTime`.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from collectionflow.api.contract import (
    ENV_HEARTBEAT_FILE,
    WorkerConfigError,
)
from collectionflow.api.kube import micro_time
from collectionflow.specs.leases import heartbeat_lease
from collectionflow.worker.context import PhaseContext

log = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"
MAX_REQUEST_SECONDS = 10.0


class Heartbeat(Protocol):
    def start(self) -> None: ...

    def pause(self) -> None:
        """Stop renewing, but keep the phase running (a hung worker, for failure tests)."""

    def stop(self) -> None:
        """Stop renewing for good; returns once no renewal is in flight."""


class NullHeartbeat:
    """The heartbeat of a phase without a Lease: unit tests and local runs."""

    def start(self) -> None:
        log.info("no heartbeat lease configured; not heart-beating")

    def pause(self) -> None:
        log.info("heartbeat paused (no lease configured)")

    def stop(self) -> None:
        pass


def api_client_from_environment(environ: Mapping[str, str]) -> client.ApiClient:
    """A client with the pod's ServiceAccount, or the kubeconfig (`KUBECONFIG`) outside a pod.

    `KUBECONFIG` is read from `environ` now, not when `kubernetes` was imported, and the
    client has its own configuration, so the process-wide default client stays untouched.
    """
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException:
        try:
            config.load_kube_config(
                config_file=environ.get("KUBECONFIG") or None,
                client_configuration=configuration,
            )
        except (config.ConfigException, OSError) as error:
            raise WorkerConfigError(
                f"cannot reach the Kubernetes API for the heartbeat: not in a pod and no "
                f"usable kubeconfig ({error})"
            ) from None
    return client.ApiClient(configuration)


class Beats:
    """Calls `beat` every `interval_seconds` from a daemon thread until paused or stopped."""

    def __init__(self, name: str, interval_seconds: float, join_seconds: float) -> None:
        self.interval_seconds = interval_seconds
        self._join_seconds = join_seconds
        self._lock = threading.Lock()
        self._paused = False
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def beat(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._thread.start()

    def pause(self) -> None:
        with self._lock:
            self._paused = True
        log.info("heartbeat paused")

    def stop(self) -> None:
        self._stopped.set()
        with self._lock:
            self._paused = True
        if self._thread.is_alive():
            self._thread.join(timeout=self._join_seconds)

    def _run(self) -> None:
        while not self._stopped.is_set():
            with self._lock:
                if not self._paused:
                    try:
                        self.beat()
                    except Exception:
                        log.warning("heartbeat: renewal failed", exc_info=True)
            self._stopped.wait(self.interval_seconds)


class FileHeartbeat(Beats):
    """The heartbeat of a phase run in the operator's own process: a file whose contents the
    operator reads (`COLLECTIONFLOW_HEARTBEAT_FILE`); no credential, no API."""

    def __init__(self, path: Path, interval_seconds: float) -> None:
        super().__init__(f"heartbeat-{path.name}", interval_seconds, 5.0)
        self.path = path

    def start(self) -> None:
        log.info("heart-beating on %s every %gs", self.path, self.interval_seconds)
        super().start()

    def beat(self) -> None:
        self.path.write_text(micro_time(dt.datetime.now(dt.UTC)), encoding="ascii")


class LeaseHeartbeat(Beats):
    """Renews `spec.renewTime` of one Lease every `interval_seconds` until paused or stopped."""

    def __init__(
        self,
        api_client: client.ApiClient,
        namespace: str,
        lease_name: str,
        holder_identity: str,
        interval_seconds: float,
        flow_uid: str = "",
        job_uid: str | None = None,
    ) -> None:
        request_timeout = min(max(interval_seconds, 1.0), MAX_REQUEST_SECONDS)
        super().__init__(f"heartbeat-{lease_name}", interval_seconds, request_timeout * 3)
        self.namespace = namespace
        self.lease_name = lease_name
        self.holder_identity = holder_identity
        self.flow_uid = flow_uid
        self.job_uid = job_uid
        self._coordination = client.CoordinationV1Api(api_client)
        self._request_timeout = request_timeout

    def start(self) -> None:
        log.info(
            "heart-beating on lease %s/%s every %gs as %s",
            self.namespace,
            self.lease_name,
            self.interval_seconds,
            self.holder_identity,
        )
        super().start()

    def beat(self) -> None:
        self.renew()

    def renew(self) -> bool:
        """One renewal (creating the Lease when it is missing); False when it did not happen."""
        try:
            self._patch_renew_time()
            return True
        except ApiException as error:
            if error.status != 404:
                log.warning("heartbeat: lease renewal failed: %s %s", error.status, error.reason)
                return False
        if not self._create():
            return False
        try:
            self._patch_renew_time()
        except ApiException as error:
            log.warning("heartbeat: lease renewal failed: %s %s", error.status, error.reason)
            return False
        return True

    def _patch_renew_time(self) -> None:
        # A merge patch carries the MicroTime string as written; the client's models would
        # re-format it and drop the fraction whenever the microseconds happen to be zero.
        body = {
            "spec": {
                "renewTime": micro_time(dt.datetime.now(dt.UTC)),
                "holderIdentity": self.holder_identity,
            }
        }
        self._coordination.patch_namespaced_lease(
            self.lease_name,
            self.namespace,
            body,
            _content_type=MERGE_PATCH,
            _request_timeout=self._request_timeout,
        )

    def _create(self) -> bool:
        """Create the Lease without times (the renewal sets them); True when it exists now."""
        manifest = heartbeat_lease(
            self.namespace, self.lease_name, self.flow_uid, self.holder_identity, self.job_uid
        )
        try:
            self._coordination.create_namespaced_lease(
                self.namespace,
                client.V1Lease.model_validate(manifest),
                _request_timeout=self._request_timeout,
            )
        except ApiException as error:
            if error.status == 409:
                return True
            log.warning("heartbeat: lease creation failed: %s %s", error.status, error.reason)
            return False
        log.info(
            "heartbeat: created lease %s%s",
            self.lease_name,
            f" owned by job uid {self.job_uid}" if self.job_uid else " without an owner",
        )
        return True


def start_heartbeat(
    ctx: PhaseContext, environ: Mapping[str, str], silent: bool = False
) -> Heartbeat:
    """The running heartbeat of the phase: a Lease one when the context names a Lease.
    `silent` (a simulation knob): it never beats, as a worker that cannot reach the API."""
    heartbeat: Heartbeat
    beat_file = environ.get(ENV_HEARTBEAT_FILE, "").strip()
    if beat_file:
        heartbeat = FileHeartbeat(Path(beat_file), ctx.heartbeat_seconds)
    elif ctx.heartbeat_lease is None:
        heartbeat = NullHeartbeat()
    else:
        heartbeat = LeaseHeartbeat(
            api_client_from_environment(environ),
            namespace=ctx.namespace,
            lease_name=ctx.heartbeat_lease,
            holder_identity=environ.get("HOSTNAME") or f"{ctx.phase}-{ctx.attempt}",
            interval_seconds=ctx.heartbeat_seconds,
            flow_uid=ctx.flow_uid,
            job_uid=ctx.job_uid,
        )
    if silent:
        log.info("simulation: the heartbeat stays silent")
        heartbeat.pause()
    heartbeat.start()
    return heartbeat
