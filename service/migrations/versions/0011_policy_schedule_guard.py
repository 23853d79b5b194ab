"""policy_version: a scheduled publish remembers the version it was scheduled over, and
why it did not happen

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26 00:10:00

A draft scheduled to publish at a time replaced whatever was in force when the time came,
even a version published after the schedule was made (a fix, a rollback): the fix would
be silently undone. Now the publish happens only if the version in force is still the one
it was scheduled over (`scheduled_over`); otherwise the schedule is dropped and
`schedule_note` says why, for the supervisor to review and schedule again. Rows scheduled
before this migration have no `scheduled_over` and publish as before.
"""

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('policy_version', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scheduled_over', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('schedule_note', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('policy_version', schema=None) as batch_op:
        batch_op.drop_column('schedule_note')
        batch_op.drop_column('scheduled_over')
