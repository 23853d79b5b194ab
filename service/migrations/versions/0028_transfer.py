"""transfer: 911 → 988 transfers to a crisis centre, with their steps

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-06 14:00:00

Issue 16: a call the policy sends to a crisis centre (a program of mode transfer) gets a
transfer record with its steps (offered, accepted, declined, completed, returned), each
timed and by whom (service/lifecycle/transfers.py).
"""

import sqlalchemy as sa
from alembic import op

revision = '0028'
down_revision = '0027'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('transfer',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('call_id', sa.String(length=40), nullable=False),
    sa.Column('program_id', sa.String(length=120), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('offered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('transfer', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_transfer_call_id'), ['call_id'], unique=False)
        batch_op.create_index('ix_transfer_status_offered_at', ['status', 'offered_at'],
                              unique=False)
    op.create_table('transfer_step',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('transfer_id', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('by', sa.String(length=120), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('transfer_step', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_transfer_step_transfer_id'), ['transfer_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('transfer_step', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_transfer_step_transfer_id'))
    op.drop_table('transfer_step')
    with op.batch_alter_table('transfer', schema=None) as batch_op:
        batch_op.drop_index('ix_transfer_status_offered_at')
        batch_op.drop_index(batch_op.f('ix_transfer_call_id'))
    op.drop_table('transfer')
