"""Server-side sign-in sessions: one row per sign-in of a user in one browser (issue 13, item 1).

A new table only; nothing else changes. The browser's cookie holds a random
token of which only the SHA-256 is stored (``token_hash``); the rules are
:mod:`superintendent.sessions`'. Sign-ins made before this upgrade (a signed
cookie naming the user) are not carried over: everyone signs in once more.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'sp_user_session',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('user_id', sa.Integer(), sa.ForeignKey('sp_user.id', ondelete='CASCADE'), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=True),
        sa.Column('handoff_hash', sa.String(length=64), nullable=True),
        sa.Column('handoff_expires_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('end_reason', sa.String(length=30), nullable=True),
        sa.UniqueConstraint('token_hash'),
        sa.UniqueConstraint('handoff_hash'),
    )
    op.create_index('ix_user_session_user', 'sp_user_session', ['user_id'])
    op.create_index('ix_user_session_created', 'sp_user_session', ['created_at'])


def downgrade() -> None:
    op.drop_index('ix_user_session_created', table_name='sp_user_session')
    op.drop_index('ix_user_session_user', table_name='sp_user_session')
    op.drop_table('sp_user_session')
