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


# The modules that may call mailflow.mail.outbox.enqueue: the catalogued mails' queue_ functions, and
# notify for the pass system's API mails (their keys come from meta.toml, not from a context type).
ENQUEUERS = {"mail/queue.py", "notify/notifications.py"}


def called_name(node: ast.Call) -> str:
    if isinstance(node.func, ast.Name):
        return node.func.id
    return node.func.attr if isinstance(node.func, ast.Attribute) else ""


def enqueue_calls(tree: ast.AST) -> int:
    return sum(1 for node in ast.walk(tree) if isinstance(node, ast.Call) and called_name(node) == "enqueue")


def test_every_catalogued_mail_is_queued_through_its_queue_function() -> None:
    callers = {path.relative_to(ROOT).as_posix() for path in ROOT.rglob("*.py")
               if enqueue_calls(ast.parse(path.read_text(encoding="utf-8")))}
    assert callers == ENQUEUERS


def test_the_check_sees_an_enqueue_call() -> None:
    assert enqueue_calls(ast.parse("outbox.enqueue(s, 'x', a)\nenqueue(s, 'y', b)\nqueue(s)\n")) == 2
