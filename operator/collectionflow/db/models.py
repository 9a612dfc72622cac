"""The ORM tables. The Alembic migrations in `migrations/versions` must describe the same schema.

Ids of master and child flows are UUID strings so SQLite and PostgreSQL store them alike. JSON
columns are JSONB on PostgreSQL and JSON (text) on SQLite.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JsonDocument = JSON().with_variant(JSONB(), "postgresql")


def utc_now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class MasterFlow(Base):
    __tablename__ = "master_flows"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    flow_type: Mapped[str] = mapped_column(String(63))
    status: Mapped[str] = mapped_column(String(63))
    current_phase: Mapped[str | None] = mapped_column(String(63))
    progress_percentage: Mapped[float] = mapped_column(Float, default=0.0)
    client_account_id: Mapped[str | None] = mapped_column(String(255))
    engagement_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utc_now, onupdate=utc_now
    )


class CollectionFlow(Base):
    """The child flow: one per CollectionFlow object, keyed by its Kubernetes uid."""

    __tablename__ = "collection_flows"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    master_flow_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("master_flows.id", ondelete="CASCADE"), index=True
    )
    k8s_namespace: Mapped[str] = mapped_column(String(63))
    k8s_name: Mapped[str] = mapped_column(String(253))
    k8s_uid: Mapped[str] = mapped_column(String(36), unique=True)
    flow_type: Mapped[str] = mapped_column(String(63))
    current_phase: Mapped[str | None] = mapped_column(String(63))
    next_phase: Mapped[str | None] = mapped_column(String(63))
    status: Mapped[str] = mapped_column(String(63))
    progress_percentage: Mapped[float] = mapped_column(Float, default=0.0)
    phase_state: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utc_now, onupdate=utc_now
    )
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PhaseRun(Base):
    """One attempt of one phase of a child flow."""

    __tablename__ = "phase_runs"
    __table_args__ = (UniqueConstraint("flow_id", "phase", "attempt"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    flow_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("collection_flows.id", ondelete="CASCADE")
    )
    phase: Mapped[str] = mapped_column(String(63))
    attempt: Mapped[int] = mapped_column(Integer)
    job_name: Mapped[str] = mapped_column(String(63))
    state: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    result: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)
    error: Mapped[str | None] = mapped_column(Text)


class FailureJournal(Base):
    """Failures kept for people to read; no foreign keys, so a failure about a flow that never
    reached the database can still be recorded."""

    __tablename__ = "failure_journal"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(63))
    operation: Mapped[str] = mapped_column(String(63))
    master_flow_id: Mapped[str | None] = mapped_column(String(36))
    child_flow_id: Mapped[str | None] = mapped_column(String(36))
    k8s_uid: Mapped[str | None] = mapped_column(String(36), index=True)
    phase: Mapped[str | None] = mapped_column(String(63))
    next_phase: Mapped[str | None] = mapped_column(String(63))
    agent_decision: Mapped[str | None] = mapped_column(Text)
    error_message: Mapped[str | None] = mapped_column(Text)
    diagnostics: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    dedupe_key: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


def table_of(model: type[Base]) -> Table:
    """The model's Core table: statements on it skip the ORM's per-execution work."""
    table = model.__table__
    assert isinstance(table, Table)
    return table
