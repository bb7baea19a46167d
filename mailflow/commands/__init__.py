"""CLI subcommands: one module per command group, each with ``register(subparsers)``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from mailflow.config import Settings, StartupError, load_settings
from mailflow.context import AppContext
from mailflow.db import has_schema, init_schema, sqlite_path


def app_context(args: argparse.Namespace, *, ensure_schema: bool = True, create: bool = False) -> AppContext:
    """Settings from --config / $MAILFLOW_CONFIG / the default, a database, and an up-to-date schema. A
    database that cannot be reached ends every command the same way: one line naming database.url; one
    without a schema too, unless ``create`` (init, run, demo), so a command run against the wrong
    database says which one it used instead of answering from a new empty one."""
    settings = load_settings(getattr(args, "config", None))
    return open_database(settings, create=create) if ensure_schema else AppContext.from_settings(settings)


T = TypeVar("T")


def in_session(args: argparse.Namespace, work: Callable[[Session], T]) -> T:
    """``work`` in one transaction of the command's database (app_context), committed when it returns;
    the connections are given back either way."""
    ctx = app_context(args)
    try:
        with ctx.db.session() as session:
            return work(session)
    finally:
        ctx.db.dispose()


def _no_schema(settings: Settings, shown: str) -> StartupError:
    """A database without a mailflow schema is most likely not the one the command was meant for."""
    origin = f" (database.url of {settings.source})" if settings.source else " (database.url)"
    return StartupError(f"no mailflow schema in {shown}{origin}: nothing is stored there. `mailflow init` "
                         "creates it; or name the database you meant with --config FILE or "
                         "MAILFLOW_DATABASE__URL")


def _cause(exc: DBAPIError, password: str | None) -> str:
    """The driver's own words on one line; a driver that quotes the password gets it masked."""
    text = " ".join(str(exc.orig or exc).split())
    return text.replace(password, "***") if password else text


def open_database(settings: Settings, *, create: bool = True) -> AppContext:
    """A context whose database answers and whose schema is current. A database that cannot be reached
    stops the start with one line naming database.url and why, the URL shown without its password; one
    without a schema is given one when ``create``, else refused naming it (StartupError) and left as
    it was (no SQLite file is made)."""
    url = make_url(settings.database.url)
    shown = url.render_as_string(hide_password=True)
    path = sqlite_path(settings.database.url)
    if not create and path is not None and not path.exists():
        raise _no_schema(settings, shown)
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
    if not create and not has_schema(ctx.db):
        ctx.db.dispose()
        raise _no_schema(settings, shown)
    init_schema(ctx.db)
    return ctx

