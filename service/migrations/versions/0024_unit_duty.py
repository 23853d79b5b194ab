"""unit_duty: each unit's spells on duty, so the figures know its hours on duty

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06 12:00:00

Issue 14, units' utilisation: the roster kept only who is on duty now (`unit.on_duty`,
`duty_since`), so the hours a unit was on duty in a range could not be known. A spell runs
from signing on to signing off (`off_at` null while on duty), written by the commands that
change duty in the same transaction (service/units/commands.py); at most one open spell
per unit (a partial unique index). Units on duty now start a spell at their `duty_since`.
"""

import sqlalchemy as sa
from alembic import op

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'unit_duty',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  autoincrement=True, nullable=False),
        sa.Column('unit_id', sa.String(length=40), nullable=False),
        sa.Column('program_id', sa.String(length=120), nullable=False),
        sa.Column('on_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('off_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_unit_duty_unit_on_at', 'unit_duty', ['unit_id', 'on_at'])
    op.create_index('ix_unit_duty_on_at', 'unit_duty', ['on_at'])
    open_only = sa.text('off_at IS NULL')
    op.create_index('ux_unit_duty_open', 'unit_duty', ['unit_id'], unique=True,
                    sqlite_where=open_only, postgresql_where=open_only)
    unit = sa.table('unit', sa.column('id'), sa.column('program_id'),
                    sa.column('on_duty', sa.Boolean()), sa.column('retired', sa.Boolean()),
                    sa.column('duty_since'), sa.column('updated_at'))
    duty = sa.table('unit_duty', sa.column('unit_id'), sa.column('program_id'),
                    sa.column('on_at'))
    op.execute(duty.insert().from_select(
        ['unit_id', 'program_id', 'on_at'],
        sa.select(unit.c.id, unit.c.program_id,
                  sa.func.coalesce(unit.c.duty_since, unit.c.updated_at))
        .where(unit.c.on_duty.is_(True), unit.c.retired.is_(False))))


def downgrade() -> None:
    op.drop_index('ux_unit_duty_open', table_name='unit_duty')
    op.drop_index('ix_unit_duty_on_at', table_name='unit_duty')
    op.drop_index('ix_unit_duty_unit_on_at', table_name='unit_duty')
    op.drop_table('unit_duty')
