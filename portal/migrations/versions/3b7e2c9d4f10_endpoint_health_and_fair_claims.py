"""endpoint health columns; claim index per endpoint

Revision ID: 3b7e2c9d4f10
Revises: 1a2837158ce4
Create Date: 2026-12-01 23:59:00

Hookline's names carry the hookline_ prefix (issue 12) in every revision, so a fresh
database never holds an unprefixed table; a database made before is renamed once by
portal/migrations/carry_over.py when it is next migrated.
"""
from alembic import op
import sqlalchemy as sa



revision = '3b7e2c9d4f10'
down_revision = '1a2837158ce4'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('hookline_subscriptions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('consecutive_failures', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('circuit_opened_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('paused_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('pause_seconds', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('probe_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_error', sa.String(length=500), nullable=True))

    with op.batch_alter_table('hookline_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_hookline_deliveries_due')
        batch_op.create_index('ix_hookline_deliveries_endpoint_due', ['status', 'priority', 'subscription_id', 'next_attempt_at'], unique=False)


def downgrade():
    with op.batch_alter_table('hookline_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_hookline_deliveries_endpoint_due')
        batch_op.create_index('ix_hookline_deliveries_due', ['status', 'priority', 'next_attempt_at'], unique=False)

    with op.batch_alter_table('hookline_subscriptions', schema=None) as batch_op:
        batch_op.drop_column('last_error')
        batch_op.drop_column('probe_until')
        batch_op.drop_column('pause_seconds')
        batch_op.drop_column('paused_until')
        batch_op.drop_column('circuit_opened_at')
        batch_op.drop_column('consecutive_failures')
