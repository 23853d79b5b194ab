"""people, access and audit: who a call is about, when its steps happened; users, keys, sessions, audit log

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 20:01:47
"""

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('api_key',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('client', sa.String(length=120), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=40), nullable=False),
    sa.Column('secret_sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('api_key', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_key_client'), ['client'], unique=False)

    op.create_table('app_user',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('username', sa.String(length=120), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('password_hash', sa.Text(), nullable=False),
    sa.Column('officer_id', sa.String(length=120), nullable=True),
    sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('password_changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('username')
    )
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=120), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=True),
    sa.Column('address', sa.String(length=64), nullable=True),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('call_id', sa.String(length=40), nullable=True),
    sa.Column('target', sa.String(length=200), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index('ix_audit_log_actor_at', ['actor', 'at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_log_at'), ['at'], unique=False)
        batch_op.create_index('ix_audit_log_call_at', ['call_id', 'at'], unique=False)

    op.create_table('user_session',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_why', sa.String(length=32), nullable=True),
    sa.Column('address', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('user_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_session_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.add_column(sa.Column('purpose', sa.String(length=16), nullable=False, server_default='live'))
        batch_op.add_column(sa.Column('person', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('person_key', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('age_group', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('address_key', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('referred_by', sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column('referred_unit', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('referral', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('follow_up_of', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('received_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('first_decided_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('initial_destination', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('assigned_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('en_route_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('on_scene_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('backup_requested_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('backup_reason', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('cleared_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('outcome', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('safety_incident', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('overridden_by', sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column('override_reason', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('overridden_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('checkin_due_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('checkins_missed', sa.Integer(), nullable=False, server_default='0'))
        batch_op.create_index(batch_op.f('ix_call_address_key'), ['address_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_call_follow_up_of'), ['follow_up_of'], unique=False)
        batch_op.create_index(batch_op.f('ix_call_person_key'), ['person_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_call_referred_by'), ['referred_by'], unique=False)


def downgrade() -> None:

    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_call_referred_by'))
        batch_op.drop_index(batch_op.f('ix_call_person_key'))
        batch_op.drop_index(batch_op.f('ix_call_follow_up_of'))
        batch_op.drop_index(batch_op.f('ix_call_address_key'))
        batch_op.drop_column('checkins_missed')
        batch_op.drop_column('checkin_due_at')
        batch_op.drop_column('overridden_at')
        batch_op.drop_column('override_reason')
        batch_op.drop_column('overridden_by')
        batch_op.drop_column('safety_incident')
        batch_op.drop_column('outcome')
        batch_op.drop_column('cleared_at')
        batch_op.drop_column('backup_reason')
        batch_op.drop_column('backup_requested_at')
        batch_op.drop_column('on_scene_at')
        batch_op.drop_column('en_route_at')
        batch_op.drop_column('assigned_at')
        batch_op.drop_column('initial_destination')
        batch_op.drop_column('first_decided_at')
        batch_op.drop_column('received_at')
        batch_op.drop_column('follow_up_of')
        batch_op.drop_column('referral')
        batch_op.drop_column('referred_unit')
        batch_op.drop_column('referred_by')
        batch_op.drop_column('address_key')
        batch_op.drop_column('age_group')
        batch_op.drop_column('person_key')
        batch_op.drop_column('person')
        batch_op.drop_column('purpose')

    with op.batch_alter_table('user_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_session_user_id'))

    op.drop_table('user_session')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_log_call_at')
        batch_op.drop_index(batch_op.f('ix_audit_log_at'))
        batch_op.drop_index('ix_audit_log_actor_at')

    op.drop_table('audit_log')
    op.drop_table('app_user')
    with op.batch_alter_table('api_key', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_key_client'))

    op.drop_table('api_key')

