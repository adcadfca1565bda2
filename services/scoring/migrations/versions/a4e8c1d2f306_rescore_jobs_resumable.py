"""rescore jobs resumable: a lease on the job and its plan in chunks

Revision ID: a4e8c1d2f306
Revises: 7c3d9e1a4b52
Create Date: 2026-12-05 09:00:00

A job that was running when this runs has no plan: it is marked failed (start it again).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a4e8c1d2f306"
down_revision: str | Sequence[str] | None = "7c3d9e1a4b52"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("rescore_jobs") as batch:
        batch.add_column(sa.Column("runner", sa.String(length=80), nullable=True))
        batch.add_column(sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "rescore_chunks",
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("usccs", sa.JSON(), nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.Column("changed", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["rescore_jobs.id"],
            name=op.f("fk_rescore_chunks_job_id_rescore_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", "number", name=op.f("pk_rescore_chunks")),
    )
    op.execute(
        "UPDATE rescore_jobs SET status = 'failed', "
        "error = 'interrupted before jobs could resume: start it again' "
        "WHERE status = 'running'"
    )


def downgrade() -> None:
    op.drop_table("rescore_chunks")
    with op.batch_alter_table("rescore_jobs") as batch:
        batch.drop_column("leased_until")
        batch.drop_column("runner")
