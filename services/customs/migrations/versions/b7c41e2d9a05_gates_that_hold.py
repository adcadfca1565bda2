"""gates that hold: one open declaration per VIN, B/L unique per VIN, policy version, refused steps

Revision ID: b7c41e2d9a05
Revises: 996d65aa5dfa
Create Date: 2026-12-02 08:40:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = 'b7c41e2d9a05'
down_revision: Union[str, Sequence[str], None] = '996d65aa5dfa'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

OPEN = "status IN ('pending', 'accepted', 'released')"


def upgrade() -> None:
    """Upgrade schema."""
    twice = op.get_bind().execute(
        sa.text(f"SELECT vin FROM declarations WHERE {OPEN} GROUP BY vin HAVING COUNT(*) > 1")
    ).scalars().all()
    if twice:  # the index below cannot hold them; which one stays is a person's decision
        raise RuntimeError(
            "VINs with more than one open declaration (withdraw all but one first): "
            + ", ".join(twice)
        )
    with op.batch_alter_table('declarations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('policy_version', sa.String(length=20), nullable=True))
        batch_op.drop_constraint('uq_declarations_bill_of_lading', type_='unique')
        batch_op.create_unique_constraint(
            'uq_declarations_bill_of_lading_vin', ['bill_of_lading', 'vin']
        )
        batch_op.create_index(
            'uq_declarations_open_vin', ['vin'], unique=True,
            sqlite_where=sa.text(OPEN), postgresql_where=sa.text(OPEN),
        )
    with op.batch_alter_table('refused_departures', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reasons', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.add_column(
            sa.Column('step', sa.String(length=10), nullable=False, server_default='departure')
        )
    listed = "'[\"' || reason || '\"]'"  # reason codes are [a-z_]: nothing to escape
    if op.get_bind().dialect.name == "postgresql":
        listed = f"CAST({listed} AS JSON)"
    op.execute(f"UPDATE refused_departures SET reasons = {listed}")


def downgrade() -> None:
    """Downgrade schema."""
    shared = op.get_bind().execute(
        sa.text(
            "SELECT bill_of_lading FROM declarations WHERE bill_of_lading IS NOT NULL "
            "GROUP BY bill_of_lading HAVING COUNT(*) > 1"
        )
    ).scalars().all()
    if shared:  # the old schema allowed one car per bill of lading
        raise RuntimeError(
            "bills of lading carrying more than one car cannot go back to the old schema: "
            + ", ".join(shared)
        )
    with op.batch_alter_table('refused_departures', schema=None) as batch_op:
        batch_op.drop_column('step')
        batch_op.drop_column('reasons')
    with op.batch_alter_table('declarations', schema=None) as batch_op:
        batch_op.drop_index('uq_declarations_open_vin')
        batch_op.drop_constraint('uq_declarations_bill_of_lading_vin', type_='unique')
        batch_op.create_unique_constraint('uq_declarations_bill_of_lading', ['bill_of_lading'])
        batch_op.drop_column('policy_version')
