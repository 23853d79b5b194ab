"""outbox: deliveries may be given up ("failed"); failing_since, the give-up clock

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26 00:30:00

A delivery the CAD refuses for good (a 4xx but 408, 409, 425, 429), or one failing for
longer than webhook_give_up_after, becomes `failed` and no longer holds back its call's
later deliveries (adapters/outbound.py). `failing_since` is when its current run of
failures began; rows failing at upgrade start that clock at their next failure. The time
a delivery failed is its `last_attempt_at`, so it needs no column of its own.
"""

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failing_since', sa.DateTime(timezone=True),
                                      nullable=True))


def downgrade() -> None:
    # An older Liaison knows no "failed": it retries them, as it did before.
    op.execute("UPDATE outbox SET status = 'pending' WHERE status = 'failed'")
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('failing_since')
