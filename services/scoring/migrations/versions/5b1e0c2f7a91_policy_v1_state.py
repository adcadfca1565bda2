"""policy v1: running state per enterprise, assessment history, exported VINs, rescore jobs;
the ledger keeps each event's canonical JSON.

The running state of the first revision (a tally without a window) cannot be converted: the
``assessments`` table is recreated empty. ``POST /v1/rescore`` rebuilds it from the ledger.

Revision ID: 5b1e0c2f7a91
Revises: 939ca5c918df
Create Date: 2026-11-28 02:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "5b1e0c2f7a91"
down_revision: str | Sequence[str] | None = "939ca5c918df"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ledger", schema=None) as batch_op:
        batch_op.alter_column(
            "data", existing_type=sa.JSON(), type_=sa.Text(), postgresql_using="data::text"
        )
    op.drop_table("assessments")
    op.create_table(
        "assessments",
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("province", sa.String(length=6), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("tier", sa.String(length=20), nullable=False),
        sa.Column("exports", sa.Integer(), nullable=False),
        sa.Column("volume_band", sa.Integer(), nullable=False),
        sa.Column("window_end", sa.Integer(), nullable=False),
        sa.Column("events_counted", sa.Integer(), nullable=False),
        sa.Column("emitted_score", sa.Float(), nullable=True),
        sa.Column("emitted_tier", sa.String(length=20), nullable=True),
        sa.Column("policy_version", sa.String(length=20), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("uscc", name=op.f("pk_assessments")),
    )
    with op.batch_alter_table("assessments", schema=None) as batch_op:
        for column in ("province", "score", "tier", "volume_band", "window_end"):
            batch_op.create_index(batch_op.f(f"ix_assessments_{column}"), [column], unique=False)
    op.create_table(
        "assessment_changes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("tier", sa.String(length=20), nullable=False),
        sa.Column("previous_tier", sa.String(length=20), nullable=True),
        sa.Column("recommended_action", sa.String(length=20), nullable=False),
        sa.Column("components", sa.JSON(), nullable=False),
        sa.Column("exit_rules", sa.JSON(), nullable=False),
        sa.Column("causes", sa.JSON(), nullable=False),
        sa.Column("policy_version", sa.String(length=20), nullable=False),
        sa.Column("assessed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assessment_changes")),
        sa.UniqueConstraint("event_id", name=op.f("uq_assessment_changes_event_id")),
    )
    with op.batch_alter_table("assessment_changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_assessment_changes_uscc"), ["uscc"], unique=False)
    op.create_table(
        "exported_vins",
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("vin", sa.String(length=17), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("uscc", "vin", name=op.f("pk_exported_vins")),
    )
    op.create_table(
        "rescore_jobs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("changed", sa.Integer(), nullable=False),
        sa.Column("policy_version", sa.String(length=20), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rescore_jobs")),
    )


def downgrade() -> None:
    op.drop_table("rescore_jobs")
    op.drop_table("exported_vins")
    with op.batch_alter_table("assessment_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_assessment_changes_uscc"))
    op.drop_table("assessment_changes")
    op.drop_table("assessments")
    op.create_table(
        "assessments",
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("tally", sa.JSON(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("tier", sa.String(length=20), nullable=False),
        sa.Column("emitted_score", sa.Float(), nullable=True),
        sa.Column("emitted_tier", sa.String(length=20), nullable=True),
        sa.Column("policy_version", sa.String(length=20), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("uscc", name=op.f("pk_assessments")),
    )
    with op.batch_alter_table("assessments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_assessments_tier"), ["tier"], unique=False)
    with op.batch_alter_table("ledger", schema=None) as batch_op:
        batch_op.alter_column(
            "data", existing_type=sa.Text(), type_=sa.JSON(), postgresql_using="data::json"
        )
