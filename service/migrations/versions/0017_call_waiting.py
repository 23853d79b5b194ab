"""call waiting: which program an open call waits for (queued or deferred), since when,
and its deadline, so several instances on one database keep one queue

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 08:00:00

Issue 13: the live service keeps queues and deferred calls. The columns follow the call's
decision (service/lifecycle/recorded.py); the index finds the waiting calls, oldest first.
"""

import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.add_column(sa.Column('wait_program', sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column('wait_since', sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('wait_deadline', sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.create_index('ix_call_wait_program_since', ['wait_program', 'wait_since'],
                              unique=False,
                              sqlite_where=sa.text('wait_program IS NOT NULL'),
                              postgresql_where=sa.text('wait_program IS NOT NULL'))


def downgrade() -> None:
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.drop_index('ix_call_wait_program_since')
        batch_op.drop_column('wait_deadline')
        batch_op.drop_column('wait_since')
        batch_op.drop_column('wait_program')
