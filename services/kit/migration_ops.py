"""The kit's own tables (outbox, inbox) as migration steps every service's revisions call.

Each function is frozen once a revision calls it: a change to the kit's tables is a new
function here (`..._0002`) called from a new revision of every service, since each service
has the tables in its own database.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


def create_tables_0001() -> None:
    """kit_inbox and kit_outbox as services.kit.db defined them when migrations began."""
    op.create_table(
        "kit_inbox",
        sa.Column("consumer", sa.String(length=128), nullable=False),
        sa.Column("msg_id", sa.String(length=128), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "msg_id"),
    )
    op.create_table(
        "kit_outbox",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("msg_id", sa.String(length=128), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("msg_id"),
    )
    op.create_index(
        op.f("ix_kit_outbox_published_at"), "kit_outbox", ["published_at"], unique=False
    )


def drop_tables_0001() -> None:
    op.drop_index(op.f("ix_kit_outbox_published_at"), table_name="kit_outbox")
    op.drop_table("kit_outbox")
    op.drop_table("kit_inbox")
