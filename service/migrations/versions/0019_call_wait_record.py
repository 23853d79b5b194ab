"""call wait record: the program a call's figures count it under, and how its wait went

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 10:00:00

Issue 13, the program figures: per program reach, calls queued or deferred, waits and
fall-backs. The writer keeps these as decisions are recorded (service/lifecycle/recorded.py
`decision_columns`); unlike `wait_program`/`wait_since` they outlive the wait.
"""

import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.add_column(sa.Column('program_id', sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column('wait_kind', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('waited_from', sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('wait_ended_at', sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('wait_outcome', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.drop_column('wait_outcome')
        batch_op.drop_column('wait_ended_at')
        batch_op.drop_column('waited_from')
        batch_op.drop_column('wait_kind')
        batch_op.drop_column('program_id')
