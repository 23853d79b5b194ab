"""board_message.restricted_body: each board message as dispatchers may see it

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-27 10:00:00

Dispatchers follow the board too, and on behavioural-health calls they may not read the
team's notes (service/calls/visibility.py). The narrowed message is made once when the message
is written and kept beside the full one, so neither the live fan-out nor a replay narrows
it again per client. Rows written before have none: they are narrowed when read, as if
their call were protected.
"""

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('board_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('restricted_body', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('board_message', schema=None) as batch_op:
        batch_op.drop_column('restricted_body')
