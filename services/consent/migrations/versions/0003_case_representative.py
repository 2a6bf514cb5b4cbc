"""who may speak for the child: the case's representative

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 10:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("consent_case", schema=None) as batch_op:
        batch_op.add_column(sa.Column("representative_unit", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("consent_case", schema=None) as batch_op:
        batch_op.drop_column("representative_unit")
