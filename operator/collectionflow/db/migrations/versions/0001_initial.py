"""Initial schema: master flows, collection (child) flows, phase runs and the failure journal.

Revision ID: 0001
Revises:
Create Date: 2024-11-23
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _string(name: str, length: int, null: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.String(length), nullable=null)


def _text(name: str) -> sa.Column[str]:
    return sa.Column(name, sa.Text(), nullable=True)


def _time(name: str, null: bool = False) -> sa.Column[dt.datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=null)


def _json(name: str, null: bool = False) -> sa.Column[Any]:
    return sa.Column(name, JSON_DOCUMENT, nullable=null)


def _serial() -> sa.Column[int]:
    return sa.Column("id", sa.Integer(), autoincrement=True, nullable=False)


def _owned_by(table: str, column: str, owner: str) -> sa.ForeignKeyConstraint:
    """`column` of `table` holds an `owner` row's id; deleting that row deletes this one."""
    name = op.f(f"fk_{table}_{column}_{owner}")
    return sa.ForeignKeyConstraint([column], [f"{owner}.id"], name=name, ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "master_flows",
        _string("id", 36),
        _string("flow_type", 63),
        _string("status", 63),
        _string("current_phase", 63, null=True),
        sa.Column("progress_percentage", sa.Float(), nullable=False),
        _string("client_account_id", 255, null=True),
        _string("engagement_id", 255, null=True),
        _time("created_at"),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_master_flows")),
    )
    op.create_table(
        "collection_flows",
        _string("id", 36),
        _string("master_flow_id", 36),
        _string("k8s_namespace", 63),
        _string("k8s_name", 253),
        _string("k8s_uid", 36),
        _string("flow_type", 63),
        _string("current_phase", 63, null=True),
        _string("next_phase", 63, null=True),
        _string("status", 63),
        sa.Column("progress_percentage", sa.Float(), nullable=False),
        _json("phase_state"),
        _time("created_at"),
        _time("updated_at"),
        _time("cancelled_at", null=True),
        _owned_by("collection_flows", "master_flow_id", "master_flows"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collection_flows")),
        sa.UniqueConstraint("k8s_uid", name=op.f("uq_collection_flows_k8s_uid")),
    )
    op.create_index(
        op.f("ix_collection_flows_master_flow_id"), "collection_flows", ["master_flow_id"]
    )
    op.create_table(
        "phase_runs",
        _serial(),
        _string("flow_id", 36),
        _string("phase", 63),
        sa.Column("attempt", sa.Integer(), nullable=False),
        _string("job_name", 63),
        _string("state", 16),
        _time("started_at", null=True),
        _time("finished_at", null=True),
        _json("result", null=True),
        _text("error"),
        _owned_by("phase_runs", "flow_id", "collection_flows"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_phase_runs")),
        sa.UniqueConstraint(
            "flow_id", "phase", "attempt", name=op.f("uq_phase_runs_flow_id_phase_attempt")
        ),
    )
    op.create_table(
        "failure_journal",
        _serial(),
        _string("source", 63),
        _string("operation", 63),
        _string("master_flow_id", 36, null=True),
        _string("child_flow_id", 36, null=True),
        _string("k8s_uid", 36, null=True),
        _string("phase", 63, null=True),
        _string("next_phase", 63, null=True),
        _text("agent_decision"),
        _text("error_message"),
        _json("diagnostics"),
        _string("dedupe_key", 255),
        _time("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_failure_journal")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_failure_journal_dedupe_key")),
    )
    op.create_index(op.f("ix_failure_journal_k8s_uid"), "failure_journal", ["k8s_uid"])


def downgrade() -> None:
    op.drop_index(op.f("ix_failure_journal_k8s_uid"), table_name="failure_journal")
    op.drop_table("failure_journal")
    op.drop_table("phase_runs")
    op.drop_index(op.f("ix_collection_flows_master_flow_id"), table_name="collection_flows")
    op.drop_table("collection_flows")
    op.drop_table("master_flows")
