"""mutual aid: the agency whose program helps with a call, on the call and its messages

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-06 20:45:00

Issue 17: a policy may name another agency's program as a fallback (mutual aid). The call
stays its agency's; `aid_agency_id` is the helping agency's (set from the decision), whose
people see the call and its board messages too, and whose units count it as held.
"""

import sqlalchemy as sa
from alembic import op

revision = '0030'
down_revision = '0029'
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ('call', 'board_message'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('aid_agency_id', sa.String(length=40),
                                          nullable=True))
    # Partial, as the other mostly empty columns' (a list of one agency's calls asks it).
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.create_index('ix_call_aid_agency_id', ['aid_agency_id'], unique=False,
                              sqlite_where=sa.text('aid_agency_id IS NOT NULL'),
                              postgresql_where=sa.text('aid_agency_id IS NOT NULL'))


def downgrade() -> None:
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.drop_index('ix_call_aid_agency_id')
    for table in ('call', 'board_message'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('aid_agency_id')
