"""`mailflow init` and `mailflow run`."""

from __future__ import annotations

import argparse

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from mailflow.config import Settings, StartupError, load_settings
from mailflow.context import AppContext
from mailflow.db import init_schema


def _cause(exc: DBAPIError, password: str | None) -> str:
    """The driver's own words on one line; a driver that quotes the password gets it masked."""
    text = " ".join(str(exc.orig or exc).split())
    return text.replace(password, "***") if password else text


def open_database(settings: Settings) -> AppContext:
    """A context whose database answers and whose schema is current. A database that cannot be reached
    stops the start with one line naming database.url and why, the URL shown without its password."""
    url = make_url(settings.database.url)
    shown = url.render_as_string(hide_password=True)
    try:
        ctx = AppContext.from_settings(settings)  # SQLite: creates the file's folder
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise StartupError(f"database.url: cannot create the folder of {shown}: {reason}") from exc
    try:
        with ctx.db.engine.connect():
            pass
    except DBAPIError as exc:
        ctx.db.dispose()
        raise StartupError(f"database.url: cannot connect to {shown}: {_cause(exc, url.password)}") from exc
    init_schema(ctx.db)
    return ctx


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
