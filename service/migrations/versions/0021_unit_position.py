"""unit position: where a unit was, when, how sure, and who said (its device or an AVL feed)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06 11:00:01

Issue 14: positions are kept with their time and accuracy, and deleted once older than
the retention a supervisor sets (the field sweeper; service/units/). The index finds a
unit's positions by time: its latest, and the old ones to delete.
"""

import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('unit_position',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
              nullable=False),
    sa.Column('unit_id', sa.String(length=40), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('accuracy_m', sa.Float(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('unit_position', schema=None) as batch_op:
        batch_op.create_index('ix_unit_position_unit_at', ['unit_id', 'at'], unique=False)
        batch_op.create_index('ix_unit_position_at', ['at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('unit_position', schema=None) as batch_op:
        batch_op.drop_index('ix_unit_position_at')
        batch_op.drop_index('ix_unit_position_unit_at')
    op.drop_table('unit_position')
