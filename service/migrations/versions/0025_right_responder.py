"""right responder: "was this the right responder?" at clearing and at an override

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06 12:00:00

Issue 15, the rule scorecard: the team may answer yes | no | unsure (and a short note)
when it clears a call, and a dispatcher when overriding one. Kept on the call, one answer
each (the latest), for the scorecard's counts (service/figures/scorecard.py).
"""

import sqlalchemy as sa
from alembic import op

revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None

COLUMNS = (
    ('team_right_responder', sa.String(length=8)),
    ('team_right_responder_note', sa.Text()),
    ('override_right_responder', sa.String(length=8)),
    ('override_right_responder_note', sa.Text()),
)


def upgrade() -> None:
    with op.batch_alter_table('call') as batch:
        for name, type_ in COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('call') as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
