"""time bounds and policy version: known_vehicles.transfer_endorsed_on, inspections.received_at
(was created_at: it always held the server's time of posting), inspections.policy_version

Revision ID: da6debe5ef66
Revises: 2ae45dc8bbc3
Create Date: 2026-12-02 08:40:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = 'da6debe5ef66'
down_revision: Union[str, Sequence[str], None] = '2ae45dc8bbc3'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    # Rows copied before this column keep NULL: the registry's endorsement date never reached
    # us, and registered_at (later than the endorsement) would refuse honest inspections.
    with op.batch_alter_table('known_vehicles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('transfer_endorsed_on', sa.Date(), nullable=True))

    # Verdicts decided before policy files keep policy_version NULL: their rules were code
    # and their validity ran from the posting, which no policy version describes.
    with op.batch_alter_table('inspections', schema=None) as batch_op:
        batch_op.alter_column('created_at', new_column_name='received_at',
                              existing_type=sa.DateTime(timezone=True), existing_nullable=False)
        batch_op.add_column(sa.Column('policy_version', sa.String(length=32), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('inspections', schema=None) as batch_op:
        batch_op.drop_column('policy_version')
        batch_op.alter_column('received_at', new_column_name='created_at',
                              existing_type=sa.DateTime(timezone=True), existing_nullable=False)

    with op.batch_alter_table('known_vehicles', schema=None) as batch_op:
        batch_op.drop_column('transfer_endorsed_on')
