"""Items keep the latest model's guess and its confidence (shown as a hint where a project wants it).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('sp_item') as batch_op:
        batch_op.add_column(sa.Column('hint', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('hint_confidence', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('sp_item') as batch_op:
        batch_op.drop_column('hint_confidence')
        batch_op.drop_column('hint')
