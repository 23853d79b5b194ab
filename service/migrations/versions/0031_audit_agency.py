"""the audit log by agency: whose person or key each entry's actor was

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-06 23:20:00

Issue 17: an agency's supervisors read their agency's audit log only. An entry is theirs
when its actor was one of their agency's people or keys, or when it is about one of their
agency's calls (an attempt on it by another agency's dispatcher, say); `agency_id` keeps
the first (`*`: a regional person or a key tied to no agency; NULL: nobody logged in).
Entries made before it are given their actor's agency where the person or key exists.
"""

import sqlalchemy as sa
from alembic import op

revision = '0031'
down_revision = '0030'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('agency_id', sa.String(length=40), nullable=True))
        batch_op.create_index('ix_audit_log_agency_at', ['agency_id', 'at'], unique=False)
    op.execute("UPDATE audit_log SET agency_id = (SELECT agency_id FROM app_user "
               "WHERE app_user.username = audit_log.actor) "
               "WHERE actor NOT LIKE 'key:%'")
    op.execute("UPDATE audit_log SET agency_id = (SELECT agency_id FROM api_key "
               "WHERE 'key:' || api_key.id = audit_log.actor) "
               "WHERE actor LIKE 'key:%'")


def downgrade() -> None:
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_log_agency_at')
        batch_op.drop_column('agency_id')
