"""Review and history: items keep a reviewer's correction, label changes are recorded, model runs keep extra signals.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('sp_item') as batch_op:
        batch_op.add_column(sa.Column('review_value', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('reviewed_by', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key('fk_item_reviewed_by', 'sp_user', ['reviewed_by'], ['id'], ondelete='SET NULL')
    with op.batch_alter_table('sp_model_run') as batch_op:
        batch_op.add_column(sa.Column('signals', sa.JSON(), nullable=False, server_default='{}'))
    op.create_table('sp_annotation_revision',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('old_value', sa.Text(), nullable=True),
    sa.Column('new_value', sa.Text(), nullable=True),
    sa.Column('changed_by', sa.Integer(), nullable=True),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['sp_project.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['item_id'], ['sp_item.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['sp_user.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['changed_by'], ['sp_user.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_revision_project_item', 'sp_annotation_revision', ['project_id', 'item_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_revision_project_item', table_name='sp_annotation_revision')
    op.drop_table('sp_annotation_revision')
    with op.batch_alter_table('sp_model_run') as batch_op:
        batch_op.drop_column('signals')
    with op.batch_alter_table('sp_item') as batch_op:
        batch_op.drop_constraint('fk_item_reviewed_by', type_='foreignkey')
        batch_op.drop_column('reviewed_at')
        batch_op.drop_column('reviewed_by')
        batch_op.drop_column('review_value')
