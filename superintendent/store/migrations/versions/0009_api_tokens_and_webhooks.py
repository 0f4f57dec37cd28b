"""Personal access tokens for the HTTP API, and per-project webhooks with their outbox (issue 15).

New tables only; nothing else changes. Only a token's SHA-256 is stored
(``sp_api_token.token_hash``). ``sp_webhook_delivery`` is both the outbox
(rows written in the transaction of the event, sent later by a worker) and
the delivery log shown on the Admin page.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'sp_api_token',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('user_id', sa.Integer(), sa.ForeignKey('sp_user.id', ondelete='CASCADE'), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('prefix', sa.String(length=16), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint('token_hash'),
    )
    op.create_index('ix_api_token_user', 'sp_api_token', ['user_id'])
    op.create_table(
        'sp_webhook',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('project_id', sa.Integer(), sa.ForeignKey('sp_project.id', ondelete='CASCADE'), nullable=False),
        sa.Column('url', sa.String(length=2000), nullable=False),
        sa.Column('secret', sa.String(length=128), nullable=False),
        sa.Column('events', sa.Text(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('paused_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('paused_reason', sa.Text(), nullable=True),
        sa.Column('created_by', sa.Integer(), sa.ForeignKey('sp_user.id', ondelete='SET NULL'), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_webhook_project', 'sp_webhook', ['project_id'])
    op.create_table(
        'sp_webhook_delivery',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('webhook_id', sa.Integer(), sa.ForeignKey('sp_webhook.id', ondelete='CASCADE'), nullable=False),
        sa.Column('event', sa.String(length=40), nullable=False),
        sa.Column('event_id', sa.String(length=64), nullable=False),
        sa.Column('payload', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('response_code', sa.Integer(), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index('ix_webhook_delivery_due', 'sp_webhook_delivery', ['status', 'next_attempt_at'])
    op.create_index('ix_webhook_delivery_hook', 'sp_webhook_delivery', ['webhook_id', 'id'])


def downgrade() -> None:
    op.drop_index('ix_webhook_delivery_hook', table_name='sp_webhook_delivery')
    op.drop_index('ix_webhook_delivery_due', table_name='sp_webhook_delivery')
    op.drop_table('sp_webhook_delivery')
    op.drop_index('ix_webhook_project', table_name='sp_webhook')
    op.drop_table('sp_webhook')
    op.drop_index('ix_api_token_user', table_name='sp_api_token')
    op.drop_table('sp_api_token')
