"""repeat-contact indexes end with the call id: the latest call is found from the index
even when several calls at a key were opened at the same moment

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 23:45:00

service/calls/history.py orders a key's calls by (opened_at, id) to pick one latest call. With
(key, opened_at) alone SQLite sorted every call sharing the latest opening time (a CAD
that stamps to the second, a replay, a burst at a shelter) and read each one's row for
its id: ingest slowed as such calls piled up (the ingest bench, whose calls share one
address and one time, lost a third of its speed after 3,000 calls).
"""

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def _not_null(column: str) -> dict[str, object]:
    where = sa.text(f"{column} IS NOT NULL")
    return {"sqlite_where": where, "postgresql_where": where}


def upgrade() -> None:
    with op.batch_alter_table('call', schema=None) as batch_op:
        for key in ('person_key', 'address_key'):
            batch_op.drop_index(f'ix_call_{key}_opened_at')
            batch_op.create_index(f'ix_call_{key}_opened_at_id', [key, 'opened_at', 'id'],
                                  unique=False, **_not_null(key))


def downgrade() -> None:
    with op.batch_alter_table('call', schema=None) as batch_op:
        for key in ('person_key', 'address_key'):
            batch_op.drop_index(f'ix_call_{key}_opened_at_id')
            batch_op.create_index(f'ix_call_{key}_opened_at', [key, 'opened_at'],
                                  unique=False, **_not_null(key))
