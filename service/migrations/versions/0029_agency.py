"""agency: several agencies (jurisdictions) in one deployment

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-06 17:15:00

Issue 17: a regional answering point dispatches for several agencies, each with its own
policy, time zone, teams and data. An agency is a record; calls, policy versions, units,
people and keys name theirs. A database made before this becomes one agency, `default`,
in the time zone of its policy in force, holding every call, version, unit and person;
keys stay tied to no agency (`*`: the event or its place names one), so nothing a CAD
sends today changes.
"""

import re

import sqlalchemy as sa
from alembic import op

revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None

DEFAULT = "default"
_ZONE = re.compile(r"^\s+timezone:\s*['\"]?([A-Za-z0-9_+\-/]+)", re.MULTILINE)


def _zone_in_force(conn: sa.Connection) -> str:
    """The published policy's time zone: the one agency's own (UTC with none yet; the
    first policy stored sets it, service/policy/region.py)."""
    row = conn.execute(sa.text("SELECT document FROM policy_version WHERE status = "
                               "'published' ORDER BY id DESC LIMIT 1")).first()
    found = _ZONE.search(row[0]) if row else None
    return found.group(1) if found else "UTC"


def upgrade() -> None:
    op.create_table('agency',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('districts', sa.Text(), nullable=False),
    sa.Column('boundary', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    conn = op.get_bind()
    now = sa.func.now() if conn.dialect.name == "postgresql" else sa.text("CURRENT_TIMESTAMP")
    agency = sa.table('agency', sa.column('id'), sa.column('name'), sa.column('timezone'),
                      sa.column('districts'), sa.column('boundary'), sa.column('created_at'),
                      sa.column('updated_at'))
    conn.execute(agency.insert().values(id=DEFAULT, name="Default agency",
                                        timezone=_zone_in_force(conn), districts="[]",
                                        boundary=None, created_at=now, updated_at=now))
    for table in ('policy_version', 'unit', 'app_user', 'what_if_job'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('agency_id', sa.String(length=40),
                                          nullable=False, server_default=DEFAULT))
    with op.batch_alter_table('board_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('agency_id', sa.String(length=40), nullable=True,
                                      server_default=DEFAULT))
    # A call no agency claims has none (it went to police, saying so).
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.add_column(sa.Column('agency_id', sa.String(length=40), nullable=True,
                                      server_default=DEFAULT))
    # Each agency's queue is settled on its own clock mark; the one row is the default's.
    with op.batch_alter_table('queue_settled', schema=None) as batch_op:
        batch_op.add_column(sa.Column('agency_id', sa.String(length=40), nullable=False,
                                      server_default=DEFAULT))
        batch_op.create_unique_constraint('uq_queue_settled_agency_id', ['agency_id'])
    with op.batch_alter_table('api_key', schema=None) as batch_op:
        batch_op.add_column(sa.Column('agency_id', sa.String(length=40), nullable=False,
                                      server_default='*'))
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.create_index('ix_call_agency_opened_at', ['agency_id', 'opened_at'],
                              unique=False)
    with op.batch_alter_table('policy_version', schema=None) as batch_op:
        batch_op.create_index('ix_policy_version_agency_status', ['agency_id', 'status'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('queue_settled', schema=None) as batch_op:
        batch_op.drop_constraint('uq_queue_settled_agency_id', type_='unique')
        batch_op.drop_column('agency_id')
    with op.batch_alter_table('policy_version', schema=None) as batch_op:
        batch_op.drop_index('ix_policy_version_agency_status')
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.drop_index('ix_call_agency_opened_at')
    for table in ('call', 'policy_version', 'unit', 'app_user', 'api_key', 'board_message',
                  'what_if_job'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('agency_id')
    op.drop_table('agency')
