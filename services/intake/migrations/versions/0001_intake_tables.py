"""intake tables

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
        "intake_case",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("case_ref", sa.String(length=16), nullable=False),
        sa.Column("duf_number", sa.String(length=12), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("birth_date_estimated", sa.Boolean(), nullable=False),
        sa.Column("sex", sa.String(length=16), nullable=False),
        sa.Column("nationality", sa.String(length=3), nullable=False),
        sa.Column("languages", sa.JSON(), nullable=False),
        sa.Column("care_centre", sa.String(length=64), nullable=False),
        sa.Column("arrived_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("representative_unit", sa.String(length=64), nullable=True),
        sa.Column("residence", sa.String(length=16), nullable=True),
        sa.Column("residence_decided_on", sa.Date(), nullable=True),
        sa.Column("closed", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_ref"),
        sa.UniqueConstraint("duf_number"),
    )
    op.create_index(
        op.f("ix_intake_case_care_centre"), "intake_case", ["care_centre"], unique=False
    )
    op.create_table(
        "intake_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_intake_history_case_id"), "intake_history", ["case_id"], unique=False)
    op.create_table(
        "intake_sibling",
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("sibling_duf", sa.String(length=12), nullable=False),
        sa.Column("relation", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("case_id", "sibling_duf"),
    )
    op.create_index(
        op.f("ix_intake_sibling_sibling_duf"), "intake_sibling", ["sibling_duf"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_intake_sibling_sibling_duf"), table_name="intake_sibling")
    op.drop_table("intake_sibling")
    op.drop_index(op.f("ix_intake_history_case_id"), table_name="intake_history")
    op.drop_table("intake_history")
    op.drop_index(op.f("ix_intake_case_care_centre"), table_name="intake_case")
    op.drop_table("intake_case")
    kit.drop_tables_0001()
