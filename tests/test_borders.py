"""The border of issue 16 item 4: web/ and commands/ translate, the rest decides. No domain module imports
an adapter (not even for an annotation): what a domain function needs of the web it names itself (as
mailflow.accounts.tokens.RowReader does), and the adapter hands it in."""

from __future__ import annotations

import ast
from pathlib import Path

from mailflow import cli

ROOT = Path(cli.__file__).parent
ADAPTERS = ("mailflow.web", "mailflow.commands")
# The adapters themselves and what starts them.
ENTRY = {"cli.py", "cli_bounce.py", "daemon.py", "__main__.py"}


def imported(tree: ast.AST) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def is_adapter(module: str) -> bool:
    return any(module == a or module.startswith(a + ".") for a in ADAPTERS)


def test_no_domain_module_imports_the_web_or_the_command_line() -> None:
    crossing = {}
    for path in sorted(ROOT.rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        if name.startswith(("web/", "commands/", "migrations/")) or name in ENTRY:
            continue
        found = [m for m in imported(ast.parse(path.read_text(encoding="utf-8"))) if is_adapter(m)]
        if found:
            crossing[name] = sorted(set(found))
    assert crossing == {}


def test_the_check_sees_an_adapter_import() -> None:
    tree = ast.parse("from mailflow.web.loopreads import LoopReads\nfrom mailflow import commands\n")
    assert [m for m in imported(tree) if is_adapter(m)] == [
        "mailflow.web.loopreads", "mailflow.web.loopreads.LoopReads", "mailflow.commands"]
    assert not is_adapter("mailflow.webhooks")
