"""notify tables

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
        "notify_delivery",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("notification_id", sa.String(length=36), nullable=False),
        sa.Column("recipient_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("notification_id", "channel"),
    )
    op.create_index(
        op.f("ix_notify_delivery_next_attempt_at"),
        "notify_delivery",
        ["next_attempt_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_notify_delivery_notification_id"),
        "notify_delivery",
        ["notification_id"],
        unique=False,
    )
    op.create_index(op.f("ix_notify_delivery_status"), "notify_delivery", ["status"], unique=False)
    op.create_table(
        "notify_digest",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("recipient_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("notification_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("recipient_id", "day"),
    )
    op.create_table(
        "notify_notification",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("unit", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=64), nullable=False),
        sa.Column("case_ref", sa.String(length=16), nullable=False),
        sa.Column("event_type", sa.String(length=128), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("source_event_id", sa.String(length=128), nullable=False),
        sa.Column("text_nb", sa.Text(), nullable=False),
        sa.Column("text_en", sa.Text(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("unit", "role", "dedupe_key"),
    )
    op.create_index(
        op.f("ix_notify_notification_created_at"),
        "notify_notification",
        ["created_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_notify_notification_unit"), "notify_notification", ["unit"], unique=False
    )
    op.create_table(
        "notify_recipient",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("unit", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("webhook_url", sa.String(length=500), nullable=True),
        sa.Column("webhook_secret", sa.String(length=200), nullable=True),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("digest", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("unit", "role"),
    )
    op.create_index(op.f("ix_notify_recipient_unit"), "notify_recipient", ["unit"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_notify_recipient_unit"), table_name="notify_recipient")
    op.drop_table("notify_recipient")
    op.drop_index(op.f("ix_notify_notification_unit"), table_name="notify_notification")
    op.drop_index(op.f("ix_notify_notification_created_at"), table_name="notify_notification")
    op.drop_table("notify_notification")
    op.drop_table("notify_digest")
    op.drop_index(op.f("ix_notify_delivery_status"), table_name="notify_delivery")
    op.drop_index(op.f("ix_notify_delivery_notification_id"), table_name="notify_delivery")
    op.drop_index(op.f("ix_notify_delivery_next_attempt_at"), table_name="notify_delivery")
    op.drop_table("notify_delivery")
    kit.drop_tables_0001()
