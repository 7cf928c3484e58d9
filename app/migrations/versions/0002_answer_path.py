"""answer path: judge_pending and claims on turns, app_instances heartbeats

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 01:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "app_instances",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_instances")),
    )
    with op.batch_alter_table("turns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("judge_pending", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_turns_judge_pending"), ["judge_pending"], unique=False)
    # Turns scored without the judge they should have had (before this revision they were
    # only recognisable by their flags) are marked, so the sweeper and `regrade` find them.
    turns = sa.table(
        "turns",
        sa.column("judge_pending", sa.Boolean()),
        sa.column("grading_status", sa.String()),
        sa.column("grading", sa.JSON()),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(sa.text("id"), turns.c.grading).select_from(turns).where(turns.c.grading_status == "embedding_only")
    ).all()
    failed = [
        r[0]
        for r in rows
        if any(str(f).startswith("judge_") and f != "judge_disagreement" for f in ((r[1] or {}).get("flags") or []))
    ]
    for start in range(0, len(failed), 500):
        bind.execute(
            sa.text("UPDATE turns SET judge_pending = :t WHERE id IN :ids").bindparams(
                sa.bindparam("ids", expanding=True)
            ),
            {"t": True, "ids": failed[start : start + 500]},
        )


def downgrade() -> None:
    with op.batch_alter_table("turns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_turns_judge_pending"))
        batch_op.drop_column("claimed_at")
        batch_op.drop_column("claimed_by")
        batch_op.drop_column("judge_pending")
    op.drop_table("app_instances")
