"""Initial schema: master flows, collection (child) flows, phase runs and the failure journal.

Revision ID: 0001
Revises:
Create Date: 2024-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "master_flows",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("flow_type", sa.String(63), nullable=False),
        sa.Column("status", sa.String(63), nullable=False),
        sa.Column("current_phase", sa.String(63), nullable=True),
        sa.Column("progress_percentage", sa.Float(), nullable=False),
        sa.Column("client_account_id", sa.String(255), nullable=True),
        sa.Column("engagement_id", sa.String(255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_master_flows")),
    )
    op.create_table(
        "collection_flows",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("master_flow_id", sa.String(36), nullable=False),
        sa.Column("k8s_namespace", sa.String(63), nullable=False),
        sa.Column("k8s_name", sa.String(253), nullable=False),
        sa.Column("k8s_uid", sa.String(36), nullable=False),
        sa.Column("flow_type", sa.String(63), nullable=False),
        sa.Column("current_phase", sa.String(63), nullable=True),
        sa.Column("next_phase", sa.String(63), nullable=True),
        sa.Column("status", sa.String(63), nullable=False),
        sa.Column("progress_percentage", sa.Float(), nullable=False),
        sa.Column("phase_state", JSON_DOCUMENT, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["master_flow_id"],
            ["master_flows.id"],
            name=op.f("fk_collection_flows_master_flow_id_master_flows"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collection_flows")),
        sa.UniqueConstraint("k8s_uid", name=op.f("uq_collection_flows_k8s_uid")),
    )
    op.create_index(
        op.f("ix_collection_flows_master_flow_id"), "collection_flows", ["master_flow_id"]
    )
    op.create_table(
        "phase_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("flow_id", sa.String(36), nullable=False),
        sa.Column("phase", sa.String(63), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("job_name", sa.String(63), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", JSON_DOCUMENT, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["flow_id"],
            ["collection_flows.id"],
            name=op.f("fk_phase_runs_flow_id_collection_flows"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_phase_runs")),
        sa.UniqueConstraint(
            "flow_id", "phase", "attempt", name=op.f("uq_phase_runs_flow_id_phase_attempt")
        ),
    )
    op.create_table(
        "failure_journal",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(63), nullable=False),
        sa.Column("operation", sa.String(63), nullable=False),
        sa.Column("master_flow_id", sa.String(36), nullable=True),
        sa.Column("child_flow_id", sa.String(36), nullable=True),
        sa.Column("k8s_uid", sa.String(36), nullable=True),
        sa.Column("phase", sa.String(63), nullable=True),
        sa.Column("next_phase", sa.String(63), nullable=True),
        sa.Column("agent_decision", sa.Text(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("diagnostics", JSON_DOCUMENT, nullable=False),
        sa.Column("dedupe_key", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
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
