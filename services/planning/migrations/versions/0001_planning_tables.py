"""planning tables

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from services.kit import migration_ops as kit

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    kit.create_tables_0001()
    op.create_table(
        "planning_case",
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("case_ref", sa.String(length=16), nullable=False),
        sa.Column("care_centre", sa.String(length=64), nullable=False),
        sa.Column("representative_unit", sa.String(length=64), nullable=True),
        sa.Column("arrival", sa.Date(), nullable=False),
        sa.Column("closed", sa.String(length=16), nullable=True),
        sa.Column("closed_on", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("case_id"),
    )
    op.create_index(
        op.f("ix_planning_case_care_centre"), "planning_case", ["care_centre"], unique=False
    )
    op.create_table(
        "planning_milestone",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("pathway", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("on", sa.Date(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id", "pathway", "name", "on"),
    )
    op.create_index(
        op.f("ix_planning_milestone_case_id"), "planning_milestone", ["case_id"], unique=False
    )
    op.create_table(
        "planning_task",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("case_ref", sa.String(length=16), nullable=False),
        sa.Column("pathway", sa.String(length=64), nullable=False),
        sa.Column("task", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("title_nb", sa.String(length=200), nullable=False),
        sa.Column("title_en", sa.String(length=200), nullable=False),
        sa.Column("due", sa.Date(), nullable=False),
        sa.Column("responsible_unit", sa.String(length=64), nullable=False),
        sa.Column("strength", sa.String(length=16), nullable=False),
        sa.Column("legal_ref", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("next_check", sa.Date(), nullable=True),
        sa.Column("done_on", sa.Date(), nullable=True),
        sa.Column("days_late", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id", "pathway", "task", "seq"),
    )
    op.create_index(op.f("ix_planning_task_case_id"), "planning_task", ["case_id"], unique=False)
    op.create_index("ix_planning_task_next_check", "planning_task", ["next_check"], unique=False)
    op.create_index(
        op.f("ix_planning_task_responsible_unit"),
        "planning_task",
        ["responsible_unit"],
        unique=False,
    )
    op.create_table(
        "planning_timeline",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("on", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=48), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_planning_timeline_case_id"), "planning_timeline", ["case_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_planning_timeline_case_id"), table_name="planning_timeline")
    op.drop_table("planning_timeline")
    op.drop_index(op.f("ix_planning_task_responsible_unit"), table_name="planning_task")
    op.drop_index("ix_planning_task_next_check", table_name="planning_task")
    op.drop_index(op.f("ix_planning_task_case_id"), table_name="planning_task")
    op.drop_table("planning_task")
    op.drop_index(op.f("ix_planning_milestone_case_id"), table_name="planning_milestone")
    op.drop_table("planning_milestone")
    op.drop_index(op.f("ix_planning_case_care_centre"), table_name="planning_case")
    op.drop_table("planning_case")
    kit.drop_tables_0001()
