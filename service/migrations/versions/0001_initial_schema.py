"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-25 17:24:08.057881
"""

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('board_message',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('call_id', sa.String(length=40), nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('seq')
    )
    with op.batch_alter_table('board_message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_board_message_call_id'), ['call_id'], unique=False)

    op.create_table('cad_event',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.String(length=200), nullable=False),
    sa.Column('call_id', sa.String(length=40), nullable=False),
    sa.Column('source', sa.String(length=40), nullable=False),
    sa.Column('incident_id', sa.String(length=120), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('response', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('event_id')
    )
    with op.batch_alter_table('cad_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cad_event_call_id'), ['call_id'], unique=False)

    op.create_table('cad_reject',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('source', sa.String(length=40), nullable=False),
    sa.Column('path', sa.String(length=200), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('errors', sa.Text(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('call',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('source', sa.String(length=40), nullable=False),
    sa.Column('incident_id', sa.String(length=120), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('nature_code', sa.String(length=64), nullable=False),
    sa.Column('nature_text', sa.Text(), nullable=False),
    sa.Column('narrative', sa.Text(), nullable=True),
    sa.Column('priority', sa.Integer(), nullable=True),
    sa.Column('address', sa.Text(), nullable=True),
    sa.Column('district', sa.String(length=120), nullable=True),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('flags', sa.Text(), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_event_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('team_status', sa.String(length=32), nullable=True),
    sa.Column('unit', sa.String(length=64), nullable=True),
    sa.Column('disposition', sa.String(length=64), nullable=True),
    sa.Column('destination', sa.String(length=16), nullable=False),
    sa.Column('mode', sa.String(length=40), nullable=False),
    sa.Column('category', sa.String(length=64), nullable=True),
    sa.Column('eligible', sa.Boolean(), nullable=False),
    sa.Column('not_served_reason', sa.String(length=32), nullable=True),
    sa.Column('holds_unit', sa.Boolean(), nullable=False),
    sa.Column('policy_version', sa.String(length=120), nullable=False),
    sa.Column('decision', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source', 'incident_id', name='uq_call_source_incident')
    )
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_call_destination'), ['destination'], unique=False)
        batch_op.create_index('ix_call_open_units', ['holds_unit', 'closed_at'], unique=False)

    op.create_table('decision',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('call_id', sa.String(length=40), nullable=False),
    sa.Column('cause', sa.String(length=32), nullable=False),
    sa.Column('event_id', sa.String(length=200), nullable=True),
    sa.Column('destination', sa.String(length=16), nullable=False),
    sa.Column('policy_version', sa.String(length=120), nullable=False),
    sa.Column('decision', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('decision', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_decision_call_id'), ['call_id'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('decision', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_decision_call_id'))

    op.drop_table('decision')
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.drop_index('ix_call_open_units')
        batch_op.drop_index(batch_op.f('ix_call_destination'))

    op.drop_table('call')
    op.drop_table('cad_reject')
    with op.batch_alter_table('cad_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cad_event_call_id'))

    op.drop_table('cad_event')
    with op.batch_alter_table('board_message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_board_message_call_id'))

    op.drop_table('board_message')

