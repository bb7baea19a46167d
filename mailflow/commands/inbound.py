"""`mailflow inbound import PATH`: feed a .eml file, an mbox or a Maildir into the inbound pipeline."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from mailflow.commands import app_context
from mailflow.inbound.importer import ImportError_, ImportResult, import_sources, sources


def cmd_import(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    try:
        found = [s for path in args.paths for s in sources(Path(path))]
    except (ImportError_, OSError) as exc:
        console.print(f"mailflow inbound import: {exc}")
        return 2
    ctx = app_context(args)
    result = ImportResult()
    try:
        with Progress(TextColumn("匯入郵件"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=console, transient=not console.is_terminal) as bar:
            task = bar.add_task("import", total=len(found))
            import_sources(ctx, found, result, lambda done: bar.advance(task, done))
    finally:
        ctx.db.dispose()
    print(summary_line(result), file=sys.stdout)
    return 0


def summary_line(result: ImportResult) -> str:
    other = result.total - result.processed - result.quarantined
    line = (f"共 {result.total} 封:已處理 {result.processed}、已隔離 {result.quarantined}、"
            f"重複 {result.duplicates}")
    return line + (f"、其他 {other}" if other else "")


def register(sub: argparse._SubParsersAction[Any]) -> None:
    group = sub.add_parser("inbound", help="inbound mail tools")
    inner = group.add_subparsers(dest="inbound_command", required=True, metavar="SUBCOMMAND")
    p = inner.add_parser("import", help="feed a .eml file, an mbox or a Maildir into the inbound pipeline")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.set_defaults(func=cmd_import)
