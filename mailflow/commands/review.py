"""`mailflow review list [--json]`, `review approve ID [--note TEXT]`,
`review reject ID --reason TEXT ... [--code CODE ...]`: the reviewer console from the command line."""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from mailflow.accounts import review
from mailflow.commands import app_context
from mailflow.commands.table import minute, print_table
from mailflow.timeutil import iso_taipei


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no login name in some containers
        return "cli"


def cmd_list(args: argparse.Namespace) -> int:
    ctx = app_context(args)
    try:
        with ctx.db.session() as session:
            page = review.queue(session, per_page=10_000)
            items = [{
                "id": a.id, "account": a.account.account, "name": a.account.name, "email": a.account.email,
                "ubn": a.ubn, "company_name": a.company_name, "status": a.status,
                "submitted_at": iso_taipei(a.submitted_at),
            } for a in page.items]
    finally:
        ctx.db.dispose()
    if args.json:
        print(json.dumps(items, ensure_ascii=False))
        return 0
    rows = [[str(item["id"]), minute(item["submitted_at"]),
             *(str(item[key]) for key in ("account", "name", "ubn", "company_name"))] for item in items]
    print_table(["ID", "SUBMITTED", "ACCOUNT", "NAME", "UBN", "COMPANY"], rows,
                "no applications waiting for review", right=["ID"])
    return 0


PAST_TENSE = {"approve": "approved", "reject": "rejected"}


def _decide(args: argparse.Namespace, action: str) -> int:
    ctx = app_context(args)
    try:
        with ctx.db.session() as session:
            if action == "approve":
                review.approve(session, ctx.settings, args.id, _actor(), args.note)
            else:
                reasons = review.resolve_reasons(args.code or [], args.reason or [])
                review.reject(session, ctx.settings, args.id, _actor(), reasons)
    except review.ReviewError as exc:
        print(f"mailflow: {exc.message}", file=sys.stderr)
        return 1
    finally:
        ctx.db.dispose()
    print(f"application {args.id} {PAST_TENSE[action]}; the result mails are queued")
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    return _decide(args, "approve")


def cmd_reject(args: argparse.Namespace) -> int:
    return _decide(args, "reject")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = sub.add_parser("review", help="applications waiting for review; approve or reject them")
    actions = group.add_subparsers(dest="review_command", metavar="ACTION", required=True)
    p = actions.add_parser("list", help="applications waiting for review, oldest first")
    p.add_argument("--json", action="store_true", help="one JSON array on stdout")
    p.set_defaults(func=cmd_list)
    p = actions.add_parser("approve", help="approve; queues the approval mail (verification link) and "
                           "the document-approved mail")
    p.add_argument("id", type=int, metavar="ID")
    p.add_argument("--note", default="", help="通過說明 for the document-approved mail")
    p.set_defaults(func=cmd_approve)
    codes = ", ".join(review.STANDARD_REASONS)
    p = actions.add_parser("reject", help="reject; queues the not-approved mail with every reason, and the "
                           "document-rejected mail when a standard reason concerns the company document")
    p.add_argument("id", type=int, metavar="ID")
    p.add_argument("--reason", action="append", metavar="TEXT", help="a reason in words (repeatable)")
    p.add_argument("--code", action="append", metavar="CODE", help=f"a standard reason (repeatable): {codes}")
    p.set_defaults(func=cmd_reject)
