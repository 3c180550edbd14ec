"""subscriptions: data filter and signature scheme

Revision ID: 7c4d1e8a9b20
Revises: 3b7e2c9d4f10
Create Date: 2026-12-02 10:00:00

Hookline's names carry the hookline_ prefix (issue 12) in every revision, so a fresh
database never holds an unprefixed table; a database made before is renamed once by
portal/migrations/carry_over.py when it is next migrated.
"""
from alembic import op
import sqlalchemy as sa



revision = '7c4d1e8a9b20'
down_revision = '3b7e2c9d4f10'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('hookline_subscriptions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('data_filter', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('signature_scheme', sa.String(length=16), server_default='hmac', nullable=False))


def downgrade():
    with op.batch_alter_table('hookline_subscriptions', schema=None) as batch_op:
        batch_op.drop_column('signature_scheme')
        batch_op.drop_column('data_filter')
