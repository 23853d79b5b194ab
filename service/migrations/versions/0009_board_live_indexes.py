"""indexes on call.closed_at and call.updated_at: a board opening finds the open and
recently changed calls without reading every call

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25 23:50:00

A board or console opened with ?scope=live replays only the messages of the calls live
now (service/board.live_calls): open ones (closed_at IS NULL), those changed in the last
hours (updated_at, Liaison's clock: a CAD's times may be skewed or replayed), and those
with a follow-up to do. Without these indexes they were found by reading the whole call
table, on every page open.
"""

from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.create_index('ix_call_closed_at', ['closed_at'], unique=False)
        batch_op.create_index('ix_call_updated_at', ['updated_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.drop_index('ix_call_updated_at')
        batch_op.drop_index('ix_call_closed_at')
