"""Initial schema: users, projects, items, annotations, skips, model runs, retrain locks.

Revision ID: 0001
Revises: 
Create Date: 2026-11-24
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sp_project',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('data_type', sa.String(length=20), nullable=False),
    sa.Column('label_mode', sa.String(length=10), nullable=False),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.Column('allow_free_text', sa.Boolean(), nullable=False),
    sa.Column('model_preset', sa.String(length=100), nullable=True),
    sa.Column('model_factory', sa.String(length=300), nullable=True),
    sa.Column('acquisition_function', sa.String(length=50), nullable=False),
    sa.Column('shuffle_prop', sa.Float(), nullable=False),
    sa.Column('retrain_interval_seconds', sa.Float(), nullable=True),
    sa.Column('retrain_interval_n_labels', sa.Integer(), nullable=False),
    sa.Column('annotations_per_item', sa.Integer(), nullable=False),
    sa.Column('lease_seconds', sa.Integer(), nullable=False),
    sa.Column('show_hints', sa.Boolean(), nullable=False),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('sp_user',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=150), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=True),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('failed_logins', sa.Integer(), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('username')
    )
    op.create_table('sp_item',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('external_id', sa.String(length=300), nullable=False),
    sa.Column('data', sa.Text(), nullable=False),
    sa.Column('file_path', sa.String(length=1000), nullable=True),
    sa.Column('priority', sa.Float(), nullable=False),
    sa.Column('done', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('n_annotations', sa.Integer(), server_default='0', nullable=False),
    sa.Column('leased_by', sa.Integer(), nullable=True),
    sa.Column('leased_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lease_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['leased_by'], ['sp_user.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['project_id'], ['sp_project.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('project_id', 'external_id', name='uq_item_project_external_id')
    )
    op.create_index('ix_item_leased_by', 'sp_item', ['leased_by', 'project_id'], unique=False, postgresql_where=sa.text('leased_by IS NOT NULL'), sqlite_where=sa.text('leased_by IS NOT NULL'))
    op.create_index('ix_item_queue', 'sp_item', ['project_id', 'priority', 'id'], unique=False, postgresql_where=sa.text('NOT done'), sqlite_where=sa.text('NOT done'))

    op.create_table('sp_model_run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('n_labels', sa.Integer(), nullable=False),
    sa.Column('n_ranked', sa.Integer(), nullable=False),
    sa.Column('score_mean', sa.Float(), nullable=True),
    sa.Column('score_std', sa.Float(), nullable=True),
    sa.Column('scores', sa.JSON(), nullable=False),
    sa.Column('per_class', sa.JSON(), nullable=False),
    sa.Column('confusion', sa.JSON(), nullable=False),
    sa.Column('acquisition_function', sa.String(length=100), nullable=False),
    sa.Column('phase_seconds', sa.JSON(), nullable=False),
    sa.Column('worker', sa.String(length=200), nullable=False),
    sa.Column('message', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['project_id'], ['sp_project.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_model_run_project_started', 'sp_model_run', ['project_id', 'started_at'], unique=False)

    op.create_table('sp_retrain_lock',
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('holder', sa.String(length=200), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['sp_project.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('project_id')
    )
    op.create_table('sp_annotation',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('time_taken', sa.Float(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['sp_item.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id'], ['sp_project.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['sp_user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('item_id', 'user_id', name='uq_annotation_item_user')
    )
    op.create_index('ix_annotation_project_created', 'sp_annotation', ['project_id', 'created_at'], unique=False)
    op.create_index('ix_annotation_project_user_created', 'sp_annotation', ['project_id', 'user_id', 'created_at'], unique=False)

    op.create_table('sp_skip',
    sa.Column('item_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['sp_item.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['sp_user.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('item_id', 'user_id')
    )


def downgrade() -> None:
    op.drop_table('sp_skip')
    op.drop_index('ix_annotation_project_user_created', table_name='sp_annotation')
    op.drop_index('ix_annotation_project_created', table_name='sp_annotation')

    op.drop_table('sp_annotation')
    op.drop_table('sp_retrain_lock')
    op.drop_index('ix_model_run_project_started', table_name='sp_model_run')

    op.drop_table('sp_model_run')
    op.drop_index('ix_item_queue', table_name='sp_item', postgresql_where=sa.text('NOT done'), sqlite_where=sa.text('NOT done'))
    op.drop_index('ix_item_leased_by', table_name='sp_item', postgresql_where=sa.text('leased_by IS NOT NULL'), sqlite_where=sa.text('leased_by IS NOT NULL'))

    op.drop_table('sp_item')
    op.drop_table('sp_user')
    op.drop_table('sp_project')
