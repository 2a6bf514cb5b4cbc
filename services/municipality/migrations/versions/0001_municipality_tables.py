"""municipality tables

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
        "municipality_capacity",
        sa.Column("kommunenummer", sa.String(length=4), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("bufetat_region", sa.String(length=16), nullable=False),
        sa.Column("children", sa.Integer(), nullable=False),
        sa.Column("measures", sa.JSON(), nullable=False),
        sa.Column("offers", sa.JSON(), nullable=False),
        sa.Column("competences", sa.JSON(), nullable=False),
        sa.Column("free_places", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("free_places >= 0", name="free_places_not_negative"),
        sa.PrimaryKeyConstraint("kommunenummer", "year"),
    )
    op.create_index(
        op.f("ix_municipality_capacity_bufetat_region"),
        "municipality_capacity",
        ["bufetat_region"],
        unique=False,
    )
    op.create_table(
        "refund_claim",
        sa.Column("claim_id", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.String(length=64), nullable=False),
        sa.Column("kommunenummer", sa.String(length=4), nullable=False),
        sa.Column("period_from", sa.Date(), nullable=False),
        sa.Column("period_to", sa.Date(), nullable=False),
        sa.Column("expenses_nok", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("refund_nok", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("days_claimed", sa.Integer(), nullable=False),
        sa.Column("days_refundable", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("claim_id"),
    )
    op.create_index(op.f("ix_refund_claim_case_id"), "refund_claim", ["case_id"], unique=False)
    op.create_index(
        op.f("ix_refund_claim_kommunenummer"), "refund_claim", ["kommunenummer"], unique=False
    )
    op.create_table(
        "settlement_child",
        sa.Column("case_id", sa.String(length=64), nullable=False),
        sa.Column("case_ref", sa.String(length=32), nullable=True),
        sa.Column("residence", sa.String(length=16), nullable=True),
        sa.Column("residence_decided_on", sa.Date(), nullable=True),
        sa.Column("deadline", sa.Date(), nullable=True),
        sa.Column("bufetat_region", sa.String(length=32), nullable=True),
        sa.Column("profile_from", sa.String(length=64), nullable=True),
        sa.Column("measure", sa.String(length=64), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("languages", sa.JSON(), nullable=False),
        sa.Column("care_needs", sa.JSON(), nullable=False),
        sa.Column("family", sa.JSON(), nullable=False),
        sa.Column("network", sa.JSON(), nullable=False),
        sa.Column("siblings", sa.JSON(), nullable=False),
        sa.Column("kopp_on", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("kommunenummer", sa.String(length=4), nullable=True),
        sa.Column("settled_on", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("case_id"),
    )
    op.create_index(
        op.f("ix_settlement_child_bufetat_region"),
        "settlement_child",
        ["bufetat_region"],
        unique=False,
    )
    op.create_table(
        "settlement_offer",
        sa.Column("offer_id", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.String(length=64), nullable=False),
        sa.Column("kommunenummer", sa.String(length=4), nullable=False),
        sa.Column("bufetat_region", sa.String(length=32), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("measure", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("answer_by", sa.DateTime(timezone=True), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("escalated", sa.Boolean(), nullable=False),
        sa.Column("share_request_id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("offer_id"),
    )
    op.create_index(
        op.f("ix_settlement_offer_answer_by"), "settlement_offer", ["answer_by"], unique=False
    )
    op.create_index(
        op.f("ix_settlement_offer_case_id"), "settlement_offer", ["case_id"], unique=False
    )
    op.create_index(
        op.f("ix_settlement_offer_kommunenummer"),
        "settlement_offer",
        ["kommunenummer"],
        unique=False,
    )
    op.create_index(
        "one_accepted_offer_per_child",
        "settlement_offer",
        ["case_id"],
        unique=True,
        sqlite_where=sa.text("status = 'accepted'"),
        postgresql_where=sa.text("status = 'accepted'"),
    )
    op.create_index(
        "one_pending_offer_per_child_and_municipality",
        "settlement_offer",
        ["case_id", "kommunenummer"],
        unique=True,
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_table(
        "settlement_placement",
        sa.Column("case_id", sa.String(length=64), nullable=False),
        sa.Column("offer_id", sa.String(length=64), nullable=False),
        sa.Column("kommunenummer", sa.String(length=4), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("measure", sa.String(length=64), nullable=False),
        sa.Column("settled_on", sa.Date(), nullable=False),
        sa.Column("within_deadline", sa.Boolean(), nullable=False),
        sa.Column("days_waited", sa.Integer(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("case_id"),
        sa.UniqueConstraint("offer_id"),
    )
    op.create_index(
        op.f("ix_settlement_placement_kommunenummer"),
        "settlement_placement",
        ["kommunenummer"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_settlement_placement_kommunenummer"), table_name="settlement_placement")
    op.drop_table("settlement_placement")
    op.drop_index(
        "one_pending_offer_per_child_and_municipality",
        table_name="settlement_offer",
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_index(
        "one_accepted_offer_per_child",
        table_name="settlement_offer",
        sqlite_where=sa.text("status = 'accepted'"),
        postgresql_where=sa.text("status = 'accepted'"),
    )
    op.drop_index(op.f("ix_settlement_offer_kommunenummer"), table_name="settlement_offer")
    op.drop_index(op.f("ix_settlement_offer_case_id"), table_name="settlement_offer")
    op.drop_index(op.f("ix_settlement_offer_answer_by"), table_name="settlement_offer")
    op.drop_table("settlement_offer")
    op.drop_index(op.f("ix_settlement_child_bufetat_region"), table_name="settlement_child")
    op.drop_table("settlement_child")
    op.drop_index(op.f("ix_refund_claim_kommunenummer"), table_name="refund_claim")
    op.drop_index(op.f("ix_refund_claim_case_id"), table_name="refund_claim")
    op.drop_table("refund_claim")
    op.drop_index(
        op.f("ix_municipality_capacity_bufetat_region"), table_name="municipality_capacity"
    )
    op.drop_table("municipality_capacity")
    kit.drop_tables_0001()
