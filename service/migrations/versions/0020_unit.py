"""unit: the roster of each program's field units, and who is on duty now

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 11:00:00

Issue 14: a unit was a name the board page made up and a count in the policy. Units are
now records a supervisor keeps (service/units/); the units on duty give a program its
capacity. Members and capabilities are JSON lists stored as text, like every document.
`unit_setting` (one row) holds how long positions are kept (migration 0021 keeps them).
"""

import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('unit',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('program_id', sa.String(length=120), nullable=False),
    sa.Column('call_sign', sa.String(length=80), nullable=False),
    sa.Column('members', sa.Text(), nullable=False),
    sa.Column('capabilities', sa.Text(), nullable=False),
    sa.Column('on_duty', sa.Boolean(), nullable=False),
    sa.Column('duty_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('retired', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('unit', schema=None) as batch_op:
        batch_op.create_index('ix_unit_program_id', ['program_id'], unique=False)
    op.create_table('unit_setting',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('position_retention_s', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=120), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('unit_setting')
    with op.batch_alter_table('unit', schema=None) as batch_op:
        batch_op.drop_index('ix_unit_program_id')
    op.drop_table('unit')
