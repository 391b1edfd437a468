"""The expand/contract rule over migrations (towntip/node/expand_contract.py): what an upgrade from the previous
release runs may only expand the schema, unless the migration is marked as a contract step."""

from __future__ import annotations

from pathlib import Path

import pytest

from towntip.node import expand_contract as ec
from towntip.node import releases

HEAD = '"""{doc}"""\n\nfrom alembic import op\nimport sqlalchemy as sa\n\nrevision = "0099"\ndown_revision = "0098"\n'


def migration(tmp_path: Path, upgrade: str, *, downgrade: str = "pass", marked: bool = False) -> Path:
    path = tmp_path / f"m{len(list(tmp_path.iterdir()))}.py"
    body = HEAD.format(doc="a test migration") + ("contract = True\n" if marked else "")
    body += f"\n\ndef upgrade() -> None:\n    {upgrade}\n\n\ndef downgrade() -> None:\n    {downgrade}\n"
    path.write_text(body)
    return path


def test_the_migrations_since_the_previous_release_only_expand() -> None:
    rel = releases.release("previous")
    why = releases.available(rel)
    if why is not None:
        pytest.skip(why)
    since = releases.migrations_since(rel)
    assert since, f"no migration since {rel.short}: move `previous` in deploy/releases.toml to a release before one"
    assert ec.refused(since) == [], "\n".join(map(str, ec.refused(since)))


@pytest.mark.parametrize(("upgrade", "what"), [
    ('op.drop_column("taps", "note")', "drops a column"),
    ('op.drop_table("course_people")', "drops a table"),
    ('op.rename_table("taps", "touches")', "renames a table"),
    ('op.alter_column("taps", "note", new_column_name="memo")', "renames a column"),
    ('op.alter_column("taps", "note", type_=sa.String(20))', "changes a column's type"),
    ('op.alter_column("taps", "note", nullable=False)', "makes a column NOT NULL without a server default"),
    ('op.add_column("taps", sa.Column("kind", sa.String(8), nullable=False))',
     "adds a NOT NULL column without a server default"),
    ('op.execute("ALTER TABLE taps DROP COLUMN note")', "drops a column (SQL)"),
    ('op.execute(f"ALTER TABLE {T} ALTER COLUMN note TYPE varchar(20)")', "changes a column's type (SQL)"),
    ('op.execute("ALTER TABLE taps ALTER COLUMN note SET NOT NULL")', "makes a column NOT NULL (SQL)"),
    ('with op.batch_alter_table("taps") as b:\n        b.drop_column("note")', "drops a column"),
])
def test_a_contract_step_is_refused_unless_marked(tmp_path: Path, upgrade: str, what: str) -> None:
    unmarked = migration(tmp_path, upgrade)
    assert [s.what for s in ec.refused([unmarked])] == [what]
    assert ec.refused([migration(tmp_path, upgrade, marked=True)]) == []


@pytest.mark.parametrize("upgrade", [
    'op.add_column("taps", sa.Column("note", sa.Text(), nullable=True))',
    'op.add_column("taps", sa.Column("kind", sa.String(8), nullable=False, server_default="tap"))',
    'op.create_table("notes", sa.Column("id", sa.Integer(), primary_key=True))',
    'op.create_index("ix_taps_note", "taps", ["note"])',
    'op.alter_column("taps", "note", nullable=True)',
    'op.execute("DROP TRIGGER postings_no_update")',
])
def test_an_expansion_passes(tmp_path: Path, upgrade: str) -> None:
    assert ec.refused([migration(tmp_path, upgrade, downgrade='op.drop_column("taps", "note")')]) == []


def test_it_finds_the_contract_steps_main_made_before_the_rule() -> None:
    """Two migrations of the past would each have needed a release of their own: the lint sees them."""
    found = {(s.path.name, s.what) for s in ec.refused(releases.migration_files())}
    assert ("0002_federation.py", "changes a column's type") in found
    assert ("0009_one_people_directory.py", "drops a table") in found
