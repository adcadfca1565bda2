"""dead letters redriven from the ops console

Revision ID: 7c3d9e1a4b52
Revises: 5b1e0c2f7a91
Create Date: 2026-11-28 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7c3d9e1a4b52"
down_revision: str | Sequence[str] | None = "5b1e0c2f7a91"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dlq_redrives",
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("partition", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("offset", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("redriven_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("topic", "partition", "offset", name=op.f("pk_dlq_redrives")),
    )


def downgrade() -> None:
    op.drop_table("dlq_redrives")
