"""`mailflow outbox list [--status S] [--json]` and `mailflow outbox retry ID`: the outgoing queue for
operators. A retry puts a mail back in the queue, due now; dispatch still checks the suppression list. What
may be retried, and how, is mailflow.mail.retry's: this module reads arguments and prints."""

from __future__ import annotations

import argparse
import json
import sys

from mailflow.commands import app_context, in_session
from mailflow.commands.table import minute, print_table
from mailflow.mail.outbox import listing
from mailflow.mail.retry import RetryRefused, retry
from mailflow.models import OutboxStatus

STATUSES = (OutboxStatus.QUEUED, OutboxStatus.SENDING, OutboxStatus.SENT, OutboxStatus.RETRY,
            OutboxStatus.FAILED, OutboxStatus.SUPPRESSED)


def cmd_list(args: argparse.Namespace) -> int:
    rows = in_session(args, lambda session: listing(session, args.status, args.limit))
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    empty = "outbox is empty" + (f" (status {args.status})" if args.status else "")
    table = [[str(row["id"]), minute(row["created_at"]), row["status"], str(row["attempts"]), row["template"],
              row["to"], (row["last_reply"] or "")[:60]] for row in rows]
    print_table(["ID", "CREATED", "STATUS", "TRIES", "TEMPLATE", "TO", "LAST REPLY"], table, empty,
                right=["ID", "TRIES"])
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    ctx = app_context(args)
    try:
        with ctx.db.session() as session:
            row, renewed = retry(session, ctx.settings, args.id)
            fresh = " with a fresh one-time link (the old one is void)" if renewed else ""
            print(f"outbox mail {row.id} ({row.template} to {row.to_address}) is queued again{fresh}")
    except RetryRefused as exc:
        print(f"mailflow: {exc}", file=sys.stderr)
        return 1
    finally:
        ctx.db.dispose()
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = sub.add_parser("outbox", help="the outgoing mail queue")
    commands = group.add_subparsers(dest="outbox_command", metavar="ACTION", required=True)
    p = commands.add_parser("list", help="mails in the outbox, newest first")
    p.add_argument("--status", choices=STATUSES, help="only mails in this state")
    p.add_argument("--limit", type=int, default=200, help="at most this many (default 200)")
    p.add_argument("--json", action="store_true", help="one JSON array on stdout")
    p.set_defaults(func=cmd_list)
    p = commands.add_parser("retry", help="queue a failed, retrying or suppressed mail again, due now")
    p.add_argument("id", type=int, metavar="ID")
    p.set_defaults(func=cmd_retry)
