"""CLI subcommands: one module per command group, each with ``register(subparsers)``."""

from __future__ import annotations

import argparse

from mailflow.config import load_settings
from mailflow.context import AppContext
from mailflow.db import init_schema


def app_context(args: argparse.Namespace, *, ensure_schema: bool = True) -> AppContext:
    """Settings from --config / $MAILFLOW_CONFIG / the default, a database, and an up-to-date schema."""
    ctx = AppContext.from_settings(load_settings(getattr(args, "config", None)))
    if ensure_schema:
        init_schema(ctx.db)
    return ctx
