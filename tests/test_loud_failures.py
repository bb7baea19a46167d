"""Failures are loud (issue 16 item 5): a command module that does not import fails the command line
instead of vanishing from it, and an import sits at the top of its module — where a broken one fails at
start — unless it is one of the start-up savings listed here, each with its reason."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from mailflow import cli

ROOT = Path(cli.__file__).parent

# Module -> why its imports inside functions stay there (import times measured with python -X importtime).
LATE_IMPORTS = {
    "cli.py": "`bounce parse` loads only the parser; other commands only their own modules",
    "commands/core.py": "`mailflow run`'s web and scheduler stack, loaded by `run` alone",
    "commands/table.py": "rich, only for a person at a terminal",
    "config.py": "APScheduler's cron parser (33 ms) and URL helpers, only to check the keys that need them",
    "mail/wake.py": "psycopg (150 ms), only on PostgreSQL",
    "mail/render.py": "dkimpy (41 ms), only when signing",
    "inbound/sender_auth.py": "dnspython (84 ms) and dkimpy, only when a reply is judged by its signature",
    "inbound/bounce/context.py": "html, only for an HTML-only bounce (bounce parse start-up)",
}


def late_imports(path: Path) -> list[int]:
    """Line numbers of imports inside a function (TYPE_CHECKING blocks at module level are not)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found += [n.lineno for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom)]
    return found


def test_imports_are_at_module_top_except_the_listed_start_up_savings() -> None:
    offenders = {}
    for path in sorted(ROOT.rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        if name.startswith("migrations/") or name in LATE_IMPORTS:
            continue
        lines = late_imports(path)
        if lines:
            offenders[name] = lines
    assert offenders == {}, "imports inside functions (move them up, or list the measured reason)"


def test_the_allow_list_holds_no_module_that_no_longer_needs_it() -> None:
    assert [name for name in LATE_IMPORTS if not late_imports(ROOT / name)] == []


def test_a_command_module_that_does_not_import_fails_the_command_line(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "COMMAND_MODULES", (*cli.COMMAND_MODULES, "mailflow.commands.not_written"))
    with pytest.raises(ModuleNotFoundError):
        cli.build_parser()
