"""care: the provider directory, warm handoffs to care and their steps

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-06 14:00:00

Issue 16, care after the call: providers kept by supervisors (CSV import), a call's
handoffs to them (offered → accepted → connected, or declined with why), each step timed
and by whom, and the follow-up raised once when a handoff is not connected in time
(service/lifecycle/care.py).
"""

import sqlalchemy as sa
from alembic import op

revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('provider',
    sa.Column('id', sa.String(length=60), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('services', sa.Text(), nullable=False),
    sa.Column('eligibility', sa.Text(), nullable=True),
    sa.Column('hours', sa.Text(), nullable=True),
    sa.Column('capacity', sa.Integer(), nullable=True),
    sa.Column('contact', sa.Text(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=120), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('care_referral',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('call_id', sa.String(length=40), nullable=False),
    sa.Column('provider_id', sa.String(length=60), nullable=False),
    sa.Column('provider_name', sa.String(length=200), nullable=False),
    sa.Column('services', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('offered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('offered_by', sa.String(length=120), nullable=True),
    sa.Column('status_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('connected_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('declined_reason', sa.Text(), nullable=True),
    sa.Column('follow_up_id', sa.String(length=40), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_care_referral_call_id', 'care_referral', ['call_id'], unique=False)
    op.create_index('ix_care_referral_status_offered_at', 'care_referral',
                    ['status', 'offered_at'], unique=False)
    op.create_index('ix_care_referral_offered_at', 'care_referral', ['offered_at'],
                    unique=False)
    op.create_table('care_step',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
              autoincrement=True, nullable=False),
    sa.Column('referral_id', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('by', sa.String(length=120), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_care_step_referral_id', 'care_step', ['referral_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_care_step_referral_id', table_name='care_step')
    op.drop_table('care_step')
    op.drop_index('ix_care_referral_offered_at', table_name='care_referral')
    op.drop_index('ix_care_referral_status_offered_at', table_name='care_referral')
    op.drop_index('ix_care_referral_call_id', table_name='care_referral')
    op.drop_table('care_referral')
    op.drop_table('provider')

