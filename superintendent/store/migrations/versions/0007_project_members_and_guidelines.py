"""Projects for teams: members per project, guidelines, a description per label option, archived projects, and each user's last project.

Columns are added in place (``ALTER TABLE ... ADD COLUMN``) on both
databases, never by a batch "move and copy" on SQLite: with foreign keys on,
dropping sp_project or sp_user would delete the rows that point at them.
sp_user.last_project_id is a plain number, not a foreign key (SQLite cannot
add one in place); deleting a project clears it
(:func:`superintendent.queue.delete_project`).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'sp_project_member',
        sa.Column('project_id', sa.Integer(), sa.ForeignKey('sp_project.id', ondelete='CASCADE'), primary_key=True),
        sa.Column('user_id', sa.Integer(), sa.ForeignKey('sp_user.id', ondelete='CASCADE'), primary_key=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_project_member_user', 'sp_project_member', ['user_id', 'project_id'])
    op.add_column('sp_project', sa.Column('guidelines', sa.Text(), nullable=False, server_default=''))
    op.add_column('sp_project', sa.Column('option_descriptions', sa.JSON(), nullable=False, server_default='{}'))
    op.add_column('sp_project', sa.Column('archived', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column('sp_user', sa.Column('last_project_id', sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column('sp_user', 'last_project_id')
    op.drop_column('sp_project', 'archived')
    op.drop_column('sp_project', 'option_descriptions')
    op.drop_column('sp_project', 'guidelines')
    op.drop_index('ix_project_member_user', table_name='sp_project_member')
    op.drop_table('sp_project_member')
