"""`mailflow webhook add URL --event TYPE…`, `webhook list [--json]`, `webhook disable|enable|remove ID`:
the subscribers events are POSTed to, signed the Standard Webhooks way (mailflow.notify.webhooks). `add`
prints the subscriber's signing secret (whsec_…) once; `list` shows each one's last success and failure
and why a disabled one was disabled."""

from __future__ import annotations

import argparse
import json
import sys

from mailflow.commands import app_context, in_session
from mailflow.notify import webhooks
from mailflow.notify.events import EVENT_TYPES


def cmd_add(args: argparse.Namespace) -> int:
    types = [t for group in args.event for given in group for t in given.split(",") if t]
    try:
        webhooks.check_url(args.url)
        webhooks.check_types(types)
    except webhooks.SubscriberError as exc:
        print(f"mailflow: {exc}", file=sys.stderr)
        return 2
    ctx = app_context(args)
    try:
        with ctx.db.session() as session:
            row, secret = webhooks.add_subscriber(session, args.url, types)
            number = row.id
    finally:
        ctx.db.dispose()
    print(secret)
    print(f"webhook {number} added for {', '.join(types)}; the secret above signs its deliveries and is "
          f"shown only now", file=sys.stderr)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    rows = in_session(args, webhooks.listing)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    if not rows:
        print("no webhook subscribers")
    for row in rows:
        state = "enabled" if row["enabled"] else f"DISABLED {row['disabled_at']}: {row['disabled_reason']}"
        print(f"{row['id']:>4}  {row['url']}  [{state}]")
        print(f"      events: {', '.join(row['events'])}; delivered {row['delivered']}, "
              f"{row['behind']} waiting")
        why = f" ({row['last_failure']})" if row["last_failure"] else ""
        print(f"      last success: {row['last_success_at'] or 'never'}; last failure: "
              f"{row['last_failure_at'] or 'never'}{why}")
    return 0


def _toggle(args: argparse.Namespace, enabled: bool) -> int:
    row = in_session(args, lambda session: webhooks.set_enabled(session, args.id, enabled))
    if row is None:
        print(f"mailflow: no webhook {args.id}", file=sys.stderr)
        return 1
    print(f"webhook {args.id} {'enabled: delivery resumes where it stopped' if enabled else 'disabled'}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    removed = in_session(args, lambda session: webhooks.remove_subscriber(session, args.id))
    if not removed:
        print(f"mailflow: no webhook {args.id}", file=sys.stderr)
        return 1
    print(f"webhook {args.id} removed")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = sub.add_parser("webhook", help="subscribers that receive events (Standard Webhooks)")
    actions = group.add_subparsers(dest="webhook_command", metavar="ACTION", required=True)
    p = actions.add_parser("add", help="subscribe URL to event types; prints its signing secret once")
    p.add_argument("url", metavar="URL")
    p.add_argument("--event", action="append", required=True, metavar="TYPE", nargs="+",
                   help="one or more of: " + ", ".join(EVENT_TYPES))
    p.set_defaults(func=cmd_add)
    p = actions.add_parser("list", help="subscribers with their last success and failure")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)
    for name, enabled in (("disable", False), ("enable", True)):
        what = f"{name} a subscriber" + (" (delivery resumes where it stopped)" if enabled else "")
        p = actions.add_parser(name, help=what)
        p.add_argument("id", metavar="ID", type=int)
        p.set_defaults(func=lambda args, on=enabled: _toggle(args, on))
    p = actions.add_parser("remove", help="remove a subscriber")
    p.add_argument("id", metavar="ID", type=int)
    p.set_defaults(func=cmd_remove)
