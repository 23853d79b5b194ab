"""repeat-contact indexes: (person_key, opened_at) and (address_key, opened_at); the
indexes of mostly-empty call columns hold only the rows that have a value

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 21:35:00

service/calls/history.py counts a key's calls and finds the latest one for every batch of new
calls. With an index on the key alone, the latest call is found by reading every call
at that address (a shelter, a hospital: thousands), which made ingest slower the longer
the service ran. With the opening time in the index both are index-only.

Most calls have no person id, referral, follow-up link or pending check-in: partial
indexes (WHERE … IS NOT NULL) keep those rows out, so each new call updates fewer
B-trees; every query on these columns compares them with a value, which implies NOT NULL
on both databases.
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


PARTIAL = (("ix_call_referred_by", "referred_by"), ("ix_call_follow_up_of", "follow_up_of"),
           ("ix_call_checkin_due_at", "checkin_due_at"))


def _not_null(column: str) -> dict[str, object]:
    where = sa.text(f"{column} IS NOT NULL")
    return {"sqlite_where": where, "postgresql_where": where}


def upgrade() -> None:
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.drop_index('ix_call_person_key')
        batch_op.drop_index('ix_call_address_key')
        batch_op.create_index('ix_call_person_key_opened_at', ['person_key', 'opened_at'],
                              unique=False, **_not_null('person_key'))
        batch_op.create_index('ix_call_address_key_opened_at', ['address_key', 'opened_at'],
                              unique=False, **_not_null('address_key'))
        for name, column in PARTIAL:
            batch_op.drop_index(name)
            batch_op.create_index(name, [column], unique=False, **_not_null(column))


def downgrade() -> None:
    with op.batch_alter_table('call', schema=None) as batch_op:
        for name, column in PARTIAL:
            batch_op.drop_index(name)
            batch_op.create_index(name, [column], unique=False)
        batch_op.drop_index('ix_call_address_key_opened_at')
        batch_op.drop_index('ix_call_person_key_opened_at')
        batch_op.create_index('ix_call_address_key', ['address_key'], unique=False)
        batch_op.create_index('ix_call_person_key', ['person_key'], unique=False)
