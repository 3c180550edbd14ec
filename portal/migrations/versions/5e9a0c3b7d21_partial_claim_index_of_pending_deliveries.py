"""deliveries: the claim index holds pending rows only

Revision ID: 5e9a0c3b7d21
Revises: 7c4d1e8a9b20
Create Date: 2026-12-02 01:30:00

Hookline's names carry the hookline_ prefix (issue 12) in every revision, so a fresh
database never holds an unprefixed table; a database made before is renamed once by
portal/migrations/carry_over.py when it is next migrated.
"""
from alembic import op
import sqlalchemy as sa


revision = '5e9a0c3b7d21'
down_revision = '7c4d1e8a9b20'
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'pending'")


def upgrade():
    with op.batch_alter_table('hookline_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_hookline_deliveries_endpoint_due')
        batch_op.create_index(
            'ix_hookline_deliveries_pending_due',
            ['status', 'priority', 'subscription_id', 'next_attempt_at'],
            unique=False,
            sqlite_where=PENDING,
            postgresql_where=PENDING,
        )


def downgrade():
    with op.batch_alter_table('hookline_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_hookline_deliveries_pending_due')
        batch_op.create_index('ix_hookline_deliveries_endpoint_due', ['status', 'priority', 'subscription_id', 'next_attempt_at'], unique=False)
