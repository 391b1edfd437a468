"""The expand/contract rule for migrations, checked: `python -m towntip.node.expand_contract [--all]`.

During a rolling upgrade the previous release's instances run on the schema the new release migrated to
(docs/operating.md, "Upgrades"), so a migration may only *expand* it: add tables, nullable columns or columns with
a server default, indexes, relaxed constraints. A *contract* step — drop a table or column, rename one, make a
column NOT NULL without a server default (old code inserts rows without it), change a column's type — breaks the
old code still running, and belongs in a later release, once every instance is new. Such a migration says so at
its top with `contract = True` and a docstring naming what it removes; the guide says it runs only after the
previous upgrade has finished everywhere.

This reads each migration's source (its `upgrade()` and the module's helpers, never `downgrade()`, which undoes an
expansion by contracting) and names every contract step it finds, with the line. It is a lint, not a proof: SQL
built at run time from variables is read only for its literal parts.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

DROPS = {"drop_column": "drops a column", "drop_table": "drops a table", "rename_table": "renames a table"}
SQL_CONTRACT = [
    (re.compile(r"\bDROP\s+TABLE\b", re.I), "drops a table (SQL)"),
    (re.compile(r"\bDROP\s+COLUMN\b", re.I), "drops a column (SQL)"),
    (re.compile(r"\bRENAME\s+(?:COLUMN\b|TO\b)", re.I), "renames (SQL)"),
    (re.compile(r"\bALTER\s+COLUMN\b[^;]*\bTYPE\b", re.I), "changes a column's type (SQL)"),
    (re.compile(r"\bSET\s+NOT\s+NULL\b", re.I), "makes a column NOT NULL (SQL)"),
]


@dataclass(frozen=True)
class Step:
    path: Path
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_false(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is False


def _is_none(node: ast.expr | None) -> bool:
    return node is None or (isinstance(node, ast.Constant) and node.value is None)


def _call_name(call: ast.Call) -> str:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def _literal_text(node: ast.AST) -> str:
    """The literal parts of a string, an f-string or a concatenation (what can be read without running it)."""
    parts = [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    return " ".join(parts)


def _column_steps(call: ast.Call, path: Path) -> list[Step]:
    """add_column(table, Column(name, type, nullable=False)) with no server default: old code's inserts fail."""
    out = []
    for arg in call.args:
        if isinstance(arg, ast.Call) and _call_name(arg) == "Column":
            if _is_false(_kw(arg, "nullable")) and _is_none(_kw(arg, "server_default")):
                out.append(Step(path, call.lineno, "adds a NOT NULL column without a server default"))
    return out


def contract_steps(path: Path) -> list[Step]:
    tree = ast.parse(path.read_text(), str(path))
    steps: list[Step] = []
    for top in tree.body:
        if isinstance(top, ast.FunctionDef) and top.name == "downgrade":
            continue
        if not isinstance(top, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(top):
            if not isinstance(node, ast.Call):
                continue
            name = _call_name(node)
            if name in DROPS:
                steps.append(Step(path, node.lineno, DROPS[name]))
            elif name == "alter_column":
                if not _is_none(_kw(node, "new_column_name")):
                    steps.append(Step(path, node.lineno, "renames a column"))
                if not _is_none(_kw(node, "type_")):
                    steps.append(Step(path, node.lineno, "changes a column's type"))
                if _is_false(_kw(node, "nullable")) and _is_none(_kw(node, "server_default")):
                    steps.append(Step(path, node.lineno, "makes a column NOT NULL without a server default"))
            elif name == "add_column":
                steps.extend(_column_steps(node, path))
            elif name in ("execute", "text") and node.args:
                sql = _literal_text(node.args[0])
                steps.extend(Step(path, node.lineno, what) for rx, what in SQL_CONTRACT if rx.search(sql))
    return steps


def is_marked_contract(path: Path) -> bool:
    """`contract = True` at the module's top level: a contract step, run only after every instance is new."""
    for top in ast.parse(path.read_text(), str(path)).body:
        if (isinstance(top, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "contract" for t in top.targets)
                and isinstance(top.value, ast.Constant) and top.value.value is True):
            return True
    return False


def refused(paths: list[Path]) -> list[Step]:
    """The contract steps of migrations not marked as contract steps."""
    return [s for p in paths if not is_marked_contract(p) for s in contract_steps(p)]


def main(argv: list[str] | None = None) -> int:
    from towntip.node import releases

    p = argparse.ArgumentParser(prog="python -m towntip.node.expand_contract", description=__doc__.splitlines()[0])
    p.add_argument("--all", action="store_true", help="every migration, not only those since the previous release")
    args = p.parse_args(argv)
    if args.all:
        paths = releases.migration_files()
    else:
        rel = releases.release("previous")
        try:
            paths = releases.migrations_since(rel)
        except releases.ReleaseUnavailable as exc:
            print(f"expand/contract: not checked: {exc}")
            return 0
        print(f"expand/contract: {len(paths)} migration(s) since release {rel.short}")
    bad = refused(paths)
    for step in bad:
        print(f"{step}  (a contract step: mark the migration `contract = True`, and ship it a release later)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
