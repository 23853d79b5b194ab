"""queue settled: how far in time the queue's timers have been worked through

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 09:00:00

Issue 13: settling the queue up to a time works through what happened since the last
settling once (a wait limit passing, a deferred call's time coming, a program's shift
starting), in time order, with the units free at that moment. One row (id 1), kept under
the writer's lock, so several instances work through each moment once.
"""

import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('queue_settled',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('settled_until', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('queue_settled')
