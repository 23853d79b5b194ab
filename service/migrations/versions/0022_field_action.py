"""field action keys: the field board's idempotency keys, with the first answer

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06 11:00:00

Issue 14, the offline field board: status changes and check-ins queued on a device are
sent (and perhaps sent again) when the connection returns, each with an Idempotency-Key.
A key seen before gets its first answer back and records nothing; rows are pruned after
LIAISON_FIELD_KEY_HOURS (service/lifecycle/field_keys.py).
"""

import sqlalchemy as sa
from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('field_action',
    sa.Column('actor', sa.String(length=120), nullable=False),
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('call_id', sa.String(length=40), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('request_sha256', sa.String(length=64), nullable=False),
    sa.Column('response', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('actor', 'key')
    )
    op.create_index('ix_field_action_created_at', 'field_action', ['created_at'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_field_action_created_at', table_name='field_action')
    op.drop_table('field_action')
