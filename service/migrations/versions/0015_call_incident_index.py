"""an index on call.incident_id: GET /v1/calls?incident_id= finds a CAD's incident
without reading every call

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 01:00:00

The unique (source, incident_id) index cannot serve a search by the incident number
alone (the person asking rarely knows which adapter brought the call), so PostgreSQL read
the whole call table for it.
"""

from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.create_index('ix_call_incident_id', ['incident_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.drop_index('ix_call_incident_id')
