"""`mailflow init` and `mailflow run`."""

from __future__ import annotations

import argparse

from mailflow.commands import open_database
from mailflow.config import load_settings


def cmd_init(args: argparse.Namespace) -> int:
    ctx = open_database(load_settings(args.config))
    print(f"schema is up to date ({ctx.db.engine.url.render_as_string(hide_password=True)})")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from mailflow.daemon import check_before_start, run_daemon

    settings = load_settings(args.config)
    # What the daemon itself needs is checked before the database is touched or anything starts.
    check_before_start(settings, args.role)
    return run_daemon(open_database(settings), role=args.role)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("init", help="create or upgrade the database schema (safe to run again)")
    p.set_defaults(func=cmd_init)
    p = sub.add_parser("run", help="the daemon: HTTP, scheduler, SMTP capture and inbound servers")
    p.add_argument("--role", choices=["all", "web", "worker"], default="all",
                   help="web: HTTP only; worker: scheduler and mail servers only; all: both (default)")
    p.set_defaults(func=cmd_run)
