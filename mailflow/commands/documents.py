"""`mailflow documents migrate`: move company documents stored as files into the database."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from mailflow.commands import app_context
from mailflow.ops.documents import MigrateReport, migrate_to_database


def cmd_migrate(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    ctx = app_context(args)
    try:
        if ctx.settings.document_backend != "database":
            console.print("注意:storage.backend 不是 database,新上傳的文件仍會存成檔案;"
                          "改為 database 後請再執行一次。")
        with Progress(TextColumn("移入資料庫"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=console, transient=not console.is_terminal) as bar:
            task = bar.add_task("migrate", total=None)
            report = migrate_to_database(ctx, advance=lambda: bar.advance(task),
                                         total=lambda n: bar.update(task, total=n))
    finally:
        ctx.db.dispose()
    print(summary_line(report), file=sys.stdout)
    return 1 if report.missing or report.mismatched else 0


def summary_line(report: MigrateReport) -> str:
    line = f"共 {report.total} 份檔案文件:已移入資料庫 {report.moved}"
    if report.missing:
        line += f"、找不到檔案 {report.missing}"
    if report.mismatched:
        line += f"、內容與紀錄不符(保留檔案) {report.mismatched}"
    if report.leftovers_removed:
        line += f"、移除已在資料庫中的殘留檔案 {report.leftovers_removed}"
    return line


def register(sub: argparse._SubParsersAction[Any]) -> None:
    group = sub.add_parser("documents", help="company documents")
    inner = group.add_subparsers(dest="documents_command", required=True, metavar="SUBCOMMAND")
    p = inner.add_parser("migrate", help="move documents stored as files into the database (safe to repeat)")
    p.set_defaults(func=cmd_migrate)
