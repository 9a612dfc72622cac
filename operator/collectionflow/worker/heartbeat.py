"""Proof of life for a running phase: renew the attempt's Lease from a background thread.

A Job that is running says nothing about whether its phase makes progress: a worker can
hang forever inside a healthy pod. The operator therefore watches `spec.renewTime` of the
Lease named after the Job, and the worker renews it every `heartbeat_seconds` for as long
as the phase runs. Renewal failures (API down, a conflict, missing RBAC) are logged and
tried again at the next beat: a heartbeat problem must never fail a phase that works.

The operator creates the Lease right after the Job. If the worker gets there first, it
creates the Lease itself, owned by its Job when it can read it, so it is collected with it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Mapping
from typing import Any, Protocol

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from collectionflow.api.names import heartbeat_labels
from collectionflow.worker.context import PhaseContext, WorkerConfigError

log = logging.getLogger(__name__)

ENV_JOB_NAME = "COLLECTIONFLOW_JOB_NAME"
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


def micro_time(moment: dt.datetime) -> str:
    """A Kubernetes MicroTime: RFC 3339 in UTC with microseconds and a `Z`."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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


class LeaseHeartbeat:
    """Renews `spec.renewTime` of one Lease every `interval_seconds` until paused or stopped."""

    def __init__(
        self,
        api_client: client.ApiClient,
        namespace: str,
        lease_name: str,
        holder_identity: str,
        interval_seconds: float,
        job_name: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        self.namespace = namespace
        self.lease_name = lease_name
        self.holder_identity = holder_identity
        self.interval_seconds = interval_seconds
        self.job_name = job_name
        self.labels = dict(labels or {})
        self._coordination = client.CoordinationV1Api(api_client)
        self._batch = client.BatchV1Api(api_client)
        self._request_timeout = min(max(interval_seconds, 1.0), MAX_REQUEST_SECONDS)
        self._lock = threading.Lock()
        self._paused = False
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"heartbeat-{lease_name}", daemon=True
        )

    def start(self) -> None:
        log.info(
            "heart-beating on lease %s/%s every %gs as %s",
            self.namespace,
            self.lease_name,
            self.interval_seconds,
            self.holder_identity,
        )
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
            self._thread.join(timeout=self._request_timeout * 3)

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
        metadata: dict[str, Any] = {
            "name": self.lease_name,
            "namespace": self.namespace,
            "labels": self.labels,
        }
        owner = self._job_owner_reference()
        if owner is not None:
            metadata["ownerReferences"] = [owner]
        lease = client.V1Lease.model_validate(
            {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": metadata,
                "spec": {"holderIdentity": self.holder_identity},
            }
        )
        try:
            self._coordination.create_namespaced_lease(
                self.namespace, lease, _request_timeout=self._request_timeout
            )
        except ApiException as error:
            if error.status == 409:
                return True
            log.warning("heartbeat: lease creation failed: %s %s", error.status, error.reason)
            return False
        log.info(
            "heartbeat: created lease %s%s",
            self.lease_name,
            f" owned by job {self.job_name}" if owner else " without an owner",
        )
        return True

    def _job_owner_reference(self) -> dict[str, Any] | None:
        if not self.job_name:
            return None
        try:
            job = self._batch.read_namespaced_job(
                self.job_name, self.namespace, _request_timeout=self._request_timeout
            )
        except ApiException as error:
            log.warning(
                "heartbeat: cannot read job %s to own the lease: %s %s",
                self.job_name,
                error.status,
                error.reason,
            )
            return None
        if job.metadata is None or not job.metadata.uid:
            return None
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": self.job_name,
            "uid": job.metadata.uid,
            "blockOwnerDeletion": False,
        }

    def _run(self) -> None:
        while not self._stopped.is_set():
            with self._lock:
                if not self._paused:
                    self._renew_logging_errors()
            self._stopped.wait(self.interval_seconds)

    def _renew_logging_errors(self) -> None:
        try:
            self.renew()
        except Exception:
            log.warning("heartbeat: lease renewal failed", exc_info=True)


def start_heartbeat(ctx: PhaseContext, environ: Mapping[str, str]) -> Heartbeat:
    """The running heartbeat of the phase: a Lease one when the context names a Lease."""
    heartbeat: Heartbeat
    if ctx.heartbeat_lease is None:
        heartbeat = NullHeartbeat()
    else:
        heartbeat = LeaseHeartbeat(
            api_client_from_environment(environ),
            namespace=ctx.namespace,
            lease_name=ctx.heartbeat_lease,
            holder_identity=environ.get("HOSTNAME") or f"{ctx.phase}-{ctx.attempt}",
            interval_seconds=ctx.heartbeat_seconds,
            job_name=environ.get(ENV_JOB_NAME) or ctx.heartbeat_lease,
            labels=heartbeat_labels(ctx.flow_uid),
        )
    heartbeat.start()
    return heartbeat
