"""task roles and copies; units holding the roles of a further pathway (issue 14)

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("planning_task", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("role", sa.String(length=64), nullable=False, server_default="contact_person")
        )
        batch_op.add_column(sa.Column("copies", sa.JSON(), nullable=False, server_default="[]"))
    op.create_table(
        "planning_pathway_unit",
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("pathway", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=64), nullable=False),
        sa.Column("unit", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("case_id", "pathway", "role"),
    )


def downgrade() -> None:
    op.drop_table("planning_pathway_unit")
    with op.batch_alter_table("planning_task", schema=None) as batch_op:
        batch_op.drop_column("copies")
        batch_op.drop_column("role")
