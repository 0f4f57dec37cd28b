"""Items keep the latest model's top guesses with their probabilities (shown as hints where a project wants them).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('sp_item') as batch_op:
        batch_op.add_column(sa.Column('hint_top', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('sp_item') as batch_op:
        batch_op.drop_column('hint_top')
