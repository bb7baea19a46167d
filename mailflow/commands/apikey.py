"""`mailflow apikey add NAME [--scope notify] [--scope events] [--rate N]`, `apikey list [--json]`,
`apikey revoke NAME`: the keys other parts of the pass system call the Notifications API with. The key
is printed once, by `add`; only its keyed hash is stored (mailflow.notify.apikeys)."""

from __future__ import annotations

import argparse
import json
import re
import sys

from mailflow.commands import app_context, in_session
from mailflow.models import ApiScope
from mailflow.notify import apikeys

NAME = re.compile(r"^[A-Za-z0-9._-]{1,60}$")


def cmd_add(args: argparse.Namespace) -> int:
    if not NAME.match(args.name):
        print("mailflow: NAME must be 1-60 letters, digits, '.', '_' or '-'", file=sys.stderr)
        return 2
    if args.rate is not None and not 1 <= args.rate <= 1_000_000:
        print("mailflow: --rate must be between 1 and 1000000 requests a minute", file=sys.stderr)
        return 2
    scopes = args.scope or [ApiScope.NOTIFY]
    ctx = app_context(args)
    try:
        with ctx.db.session() as session:
            if apikeys.find_key(session, args.name) is not None:
                print(f"mailflow: an API key named {args.name!r} already exists", file=sys.stderr)
                return 1
            row, key = apikeys.add_key(session, ctx.settings, args.name, scopes, args.rate)
            summary = f"{row.name}: scopes {', '.join(row.scopes)}, {row.rate_per_minute} requests a minute"
    finally:
        ctx.db.dispose()
    print(key)
    print(f"API key {summary}. It is shown only now: keep it in the calling system's secret store.",
          file=sys.stderr)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    rows = in_session(args, apikeys.listing)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    if not rows:
        print("no API keys")
    for row in rows:
        used = f"last used {row['last_used_at'] or 'never'}"
        state = f"revoked {row['revoked_at']}" if row["revoked_at"] else used
        print(f"{row['name']:<24} {row['prefix']}…  {','.join(row['scopes']):<14} "
              f"{row['rate_per_minute']:>7}/min  {row['requests']} requests, "
              f"{row['rate_limited']} over the rate  {state}")
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    row = in_session(args, lambda session: apikeys.revoke_key(session, args.name))
    if row is None:
        print(f"mailflow: no API key named {args.name!r}", file=sys.stderr)
        return 1
    print(f"API key {args.name} revoked: requests with it now get 401")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = sub.add_parser("apikey", help="keys for the Notifications API (/api/v1)")
    actions = group.add_subparsers(dest="apikey_command", metavar="ACTION", required=True)
    p = actions.add_parser("add", help="issue a key (printed once)")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--scope", action="append", choices=list(ApiScope),
                   help="notify (send, read status) and/or events (the event feed); default notify")
    p.add_argument("--rate", type=int, metavar="N", help="requests a minute (default: api.rate_per_minute)")
    p.set_defaults(func=cmd_add)
    p = actions.add_parser("list", help="the keys, their scopes, rates and use")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)
    p = actions.add_parser("revoke", help="revoke a key: it gets 401 from now on")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=cmd_revoke)
