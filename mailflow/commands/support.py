"""`mailflow support digest [--send] [--day YYYY-MM-DD]` prints the customer-service digest as tables, or
queues it to mail.support_address; `mailflow support sweep` opens the unverified / failed-mail items now."""

from __future__ import annotations

import argparse
import sys
from datetime import date

from rich.console import Console
from rich.table import Table

from mailflow.commands import app_context
from mailflow.mail.contexts import SupportDigest
from mailflow.support import digest, unverified


def _parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def print_digest(content: SupportDigest, console: Console) -> None:
    console.print(f"客服每日摘要 {content['day']}(統計日 {content['counts_day']})")
    counts = Table()
    counts.add_column("項目")
    counts.add_column("數量", justify="right")
    for key, label in content["count_labels"].items():
        counts.add_row(label, str(content["counts"].get(key, 0)))
    counts.add_row("待處理項目", str(content["counts"]["open_items"]))
    console.print(counts)
    items = Table(title=f"待處理項目(顯示 {content['items_shown']} / {content['items_total']} 筆)")
    for header in ("時間", "類別", "帳號", "姓名", "統一編號", "手機", "Email", "原因"):
        items.add_column(header)
    for item in content["items"]:
        items.add_row(item["created_at"], item["kind_title"], item["account"], item["name"], item["ubn"],
                      item["mobile"], item["address"], item["reason_text"])
    console.print(items)


def cmd_digest(args: argparse.Namespace) -> int:
    ctx = app_context(args)
    day = args.day or digest.today()
    with ctx.db.session() as session:
        if args.send:
            message = digest.send_digest(session, ctx.settings, day)
            message_id = message.id
        else:
            content = digest.build_digest(session, ctx.settings, day)
    if args.send:
        to = ctx.settings.mail.support_address
        print(f"support digest for {day} queued as outbox {message_id} to {to}")
    else:
        # Piped into a file or a mail, rows must not wrap at 80 columns.
        print_digest(content, Console(file=sys.stdout, width=None if sys.stdout.isatty() else 200))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    result = unverified.sweep(app_context(args))
    print(f"opened {result.unverified} unverified and {result.mail_failed} mail-failed support items")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = sub.add_parser("support", help="customer service: the daily digest and the item sweep")
    commands = group.add_subparsers(dest="support_command", metavar="COMMAND", required=True)
    p = commands.add_parser("digest", help="print the customer-service digest, or queue it with --send")
    p.add_argument("--send", action="store_true", help="queue the digest mail to mail.support_address")
    p.add_argument("--day", type=_parse_day, default=None,
                   help="the digest's day (YYYY-MM-DD, Taipei; default today: counts of the day before)")
    p.set_defaults(func=cmd_digest)
    p = commands.add_parser("sweep", help="open items for unverified applicants and permanently failed mails")
    p.set_defaults(func=cmd_sweep)
