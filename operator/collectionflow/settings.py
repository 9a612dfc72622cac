"""All configuration in one place, read from `COLLECTIONFLOW_*` environment variables.

Nested groups use `__`: `COLLECTIONFLOW_DB__URL`, `COLLECTIONFLOW_OPERATOR__IMAGE`.
Other `COLLECTIONFLOW_*` variables (the worker contract's `COLLECTIONFLOW_FLOW_UID`, ...) are
not settings and are ignored here.
"""

from __future__ import annotations

import socket
import uuid
from functools import lru_cache

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from collectionflow.api.models import Runner
from collectionflow.domain.stall import MISSED_COMPLETION_GRACE

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///collectionflow.sqlite"


class DatabaseSettings(BaseModel):
    url: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy async URL; unset means the SQLite file collectionflow.sqlite "
        "in the current directory.",
    )
    echo: bool = False
    pool_size: int = Field(default=5, ge=1)
    max_overflow: int = Field(default=10, ge=0)
    pool_timeout_seconds: float = Field(default=30.0, gt=0)
    pool_recycle_seconds: int = Field(default=1800, description="-1 never recycles")
    pool_pre_ping: bool = True

    def resolved_url(self) -> str:
        """The URL to connect to, secret revealed: only for the engine, never for logs."""
        return DEFAULT_DATABASE_URL if self.url is None else self.url.get_secret_value()


class OperatorSettings(BaseModel):
    image: str = "collectionflow-operator:0.1.0"
    image_pull_policy: str = "IfNotPresent"
    worker_service_account: str = "collectionflow-worker"
    manage_worker_rbac: bool = Field(
        default=True,
        description="create the worker ServiceAccount (and its RBAC) in a flow's namespace "
        "before its first Job; off when they are made beforehand (the Helm chart's "
        "watchNamespaces mode)",
    )
    worker_cluster_role: str | None = Field(
        default=None,
        description="bind the worker ServiceAccount to this ClusterRole instead of creating "
        "a Role with the worker rules (the Helm chart's cluster-wide mode)",
    )
    resync_seconds: float = Field(
        default=60.0,
        gt=0,
        description="re-decide a running flow whose Job no watch has shown yet this often, "
        "from the cache (the API is read only for what the cache lacks); a flow that waits "
        "for input, is suspended or has its Job in the cache has no timer",
    )
    relist_seconds: float = Field(
        default=600.0,
        ge=10,
        description="list every watched resource again this often, and read a waiting flow's "
        "database record again: the safety net against a watch that missed an event (one LIST "
        "per watch) and a record changed outside the operator",
    )
    heartbeat_seconds: float = Field(
        default=60.0,
        gt=0,
        description="the longest interval between a worker's heartbeats; a worker beats "
        "every fifth of its phase's stall timeout (a minute at 300 s), at most this long",
    )
    stall_timeout_seconds: float = Field(default=300.0, gt=0)
    stall_check_interval_seconds: float = Field(default=30.0, gt=0)
    pod_start_timeout_seconds: float = Field(default=300.0, gt=0)
    missed_completion_grace_seconds: float = Field(
        default=MISSED_COMPLETION_GRACE.total_seconds(),
        gt=0,
        description="a finished Job not acted on this long is a stall",
    )
    input_reminder_seconds: float = Field(default=3600.0, gt=0)
    fail_on_input_timeout: bool = False
    metrics_port: int = Field(default=9090, ge=0, le=65535)
    max_recoveries: int = Field(default=3, ge=0)
    recovery_backoff_seconds: float = Field(default=30.0, ge=0)
    runner: Runner = Field(
        default=Runner.JOB,
        description="where phases run: Job (every phase a Job; a refused Job fails its flow), "
        "Auto (a Job, or the built-in worker in the operator's own process when Jobs are "
        "refused for good) or InProcess (built-in phases in the operator's process). A flow "
        "can only ask for Job (spec.runner); a phase with its own image or command is always "
        "a Job",
    )
    allow_simulation: bool = Field(
        default=False,
        description="let flows use spec.parameters.simulate (slow, hung, failing or "
        "mis-routed phases on request): for tests and demos, never in production",
    )
    max_concurrent_reconciles: int = Field(
        default=32,
        ge=1,
        description="reconciles in flight at once (controller-runtime's "
        "MaxConcurrentReconciles): a start that finds 10,000 flows to see works through them "
        "this many at a time, so its memory stays bounded; the rest wait their turn in order",
    )
    in_process_limit: int = Field(
        default=4, ge=1, description="in-process phases at once; more wait their turn"
    )
    quota_grace_seconds: float = Field(
        default=60.0,
        ge=0,
        description="how long an exceeded quota is waited out before Auto runs in-process",
    )
    job_ttl_seconds: int | None = Field(
        default=86400,
        ge=600,
        description="delete a phase Job, with its pod and heartbeat Lease, this many seconds "
        "after it finished (the Job's ttlSecondsAfterFinished); unset keeps Jobs until their "
        "flow is deleted. At least 600, so that a Job outlives a short outage of the operator "
        "or the database: its result is read from its pod.",
    )


class LeaderSettings(BaseModel):
    """Leader election on a coordination.k8s.io/v1 Lease: with it, any number of replicas run
    and exactly one acts (see "High availability" in docs/design.md)."""

    enabled: bool = Field(
        default=False, description="elect a leader; without it this replica always acts"
    )
    lease_name: str = "collectionflow-operator-leader"
    lease_namespace: str = Field(
        default="default", description="the operator's own namespace (the chart sets it)"
    )
    identity: str = Field(
        default_factory=lambda: f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}",
        description="this replica's name in the Lease; unique per process",
    )
    # Kubernetes' own controllers use 15 s, 10 s and 2 s.
    lease_duration_seconds: float = Field(default=15.0, gt=0)
    renew_deadline_seconds: float = Field(default=10.0, gt=0)
    retry_period_seconds: float = Field(default=2.0, gt=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="COLLECTIONFLOW_",
        env_nested_delimiter="__",
        env_parse_none_str="null",
        extra="ignore",
    )

    db: DatabaseSettings = DatabaseSettings()
    operator: OperatorSettings = OperatorSettings()
    leader: LeaderSettings = LeaderSettings()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
