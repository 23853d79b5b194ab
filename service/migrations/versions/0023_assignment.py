"""assignment: a team call's assignment and the unit recommendation given then

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06 11:00:00

Issue 14, the recommendation: when a team call is assigned, the unit recommended (its
distance, estimated time, basis and reason) is kept beside the unit sent, and whether the
recommendation was taken, so the figures can compare (service/lifecycle/assignment.py).
One row per call: a call is assigned once.
"""

import sqlalchemy as sa
from alembic import op

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'assignment',
        sa.Column('call_id', sa.String(length=40), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('assigned_unit', sa.String(length=64), nullable=True),
        sa.Column('recommended_unit', sa.String(length=64), nullable=True),
        sa.Column('distance_km', sa.Float(), nullable=True),
        sa.Column('eta_minutes', sa.Integer(), nullable=True),
        sa.Column('basis', sa.String(length=16), nullable=True),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('taken', sa.Boolean(), nullable=False),
        sa.Column('by', sa.String(length=120), nullable=True),
        sa.PrimaryKeyConstraint('call_id'),
    )
    op.create_index('ix_assignment_at', 'assignment', ['at'])


def downgrade() -> None:
    op.drop_index('ix_assignment_at', table_name='assignment')
    op.drop_table('assignment')
