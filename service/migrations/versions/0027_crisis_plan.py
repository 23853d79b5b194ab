"""crisis plan: plans for a person and cautions for an address; follow-ups the policy asks for

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-06 14:00:00

Issue 16: the team writes a short plan for a person (what helps, what to avoid, who to
call) with their consent and an expiry, and a caution for an address; both are found
for a call by its folded address (and a plan by phone), shown to the team only, and
deleted by the field sweeper once expired (service/lifecycle/crisis_plans.py). A policy's
exclusion may schedule a follow-up (an overdose: police/EMS go, the team visits later):
`follow_up` keeps which exclusion asked, the program, and the CAD's word on consent.
"""

import sqlalchemy as sa
from alembic import op

revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None

FOLLOW_UP_COLUMNS = (
    ('exclusion', sa.String(length=120)),
    ('program_id', sa.String(length=120)),
    ('consent', sa.Boolean()),
)


def upgrade() -> None:
    op.create_table('crisis_plan',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('person', sa.String(length=120), nullable=False),
    sa.Column('address', sa.String(length=300), nullable=False),
    sa.Column('address_key', sa.String(length=300), nullable=False),
    sa.Column('phone', sa.String(length=40), nullable=True),
    sa.Column('phone_key', sa.String(length=20), nullable=True),
    sa.Column('helps', sa.Text(), nullable=True),
    sa.Column('avoid', sa.Text(), nullable=True),
    sa.Column('contacts', sa.Text(), nullable=True),
    sa.Column('consent_by', sa.String(length=120), nullable=False),
    sa.Column('consent_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('consent_how', sa.String(length=16), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=120), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=120), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_crisis_plan_address_key', 'crisis_plan', ['address_key'])
    op.create_index('ix_crisis_plan_phone_key', 'crisis_plan', ['phone_key'],
                    sqlite_where=sa.text('phone_key IS NOT NULL'),
                    postgresql_where=sa.text('phone_key IS NOT NULL'))
    op.create_index('ix_crisis_plan_expires_at', 'crisis_plan', ['expires_at'])
    op.create_table('premise_caution',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('address', sa.String(length=300), nullable=False),
    sa.Column('address_key', sa.String(length=300), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=120), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=120), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_premise_caution_address_key', 'premise_caution', ['address_key'])
    op.create_index('ix_premise_caution_expires_at', 'premise_caution', ['expires_at'])
    with op.batch_alter_table('follow_up') as batch:
        for name, type_ in FOLLOW_UP_COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('follow_up') as batch:
        for name, _ in reversed(FOLLOW_UP_COLUMNS):
            batch.drop_column(name)
    op.drop_index('ix_premise_caution_expires_at', table_name='premise_caution')
    op.drop_index('ix_premise_caution_address_key', table_name='premise_caution')
    op.drop_table('premise_caution')
    op.drop_index('ix_crisis_plan_expires_at', table_name='crisis_plan')
    op.drop_index('ix_crisis_plan_phone_key', table_name='crisis_plan')
    op.drop_index('ix_crisis_plan_address_key', table_name='crisis_plan')
    op.drop_table('crisis_plan')
