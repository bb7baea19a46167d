"""CLI subcommands: one module per command group, each with ``register(subparsers)``."""

from __future__ import annotations

import argparse

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from mailflow.config import Settings, StartupError, load_settings
from mailflow.context import AppContext
from mailflow.db import init_schema


def app_context(args: argparse.Namespace, *, ensure_schema: bool = True) -> AppContext:
    """Settings from --config / $MAILFLOW_CONFIG / the default, a database, and an up-to-date schema. A
    database that cannot be reached ends every command the same way: one line naming database.url."""
    settings = load_settings(getattr(args, "config", None))
    return open_database(settings) if ensure_schema else AppContext.from_settings(settings)


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

