"""`mailflow preview NAME [--out FILE] [--html]`: render a mail template with sample data, for operators
who edit the wording in templates/<NAME>/."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mailflow.config import load_settings
from mailflow.mail import TEMPLATE_NAMES
from mailflow.mail.render import RenderError, render_parts, sample_context


def preview_text(name: str, html: bool, config: str | None = None) -> str:
    settings = load_settings(config)
    parts = render_parts(settings, name, sample_context(name, settings))
    if html:
        return parts.html
    return f"Subject: {parts.subject}\n\n{parts.text}"


def cmd_preview(args: argparse.Namespace) -> int:
    if args.name not in TEMPLATE_NAMES:
        print(f"mailflow: unknown mail template {args.name!r}; one of: {', '.join(TEMPLATE_NAMES)}",
              file=sys.stderr)
        return 2
    try:
        output = preview_text(args.name, args.html, args.config)
    except RenderError as exc:
        print(f"mailflow: {exc}", file=sys.stderr)
        return 1
    if args.out:
        try:
            Path(args.out).write_text(output, encoding="utf-8")
        except OSError as exc:
            print(f"mailflow: cannot write {args.out}: {exc.strerror}", file=sys.stderr)
            return 1
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(output)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("preview", help="render a mail template with sample data")
    p.add_argument("name", metavar="NAME", help=f"one of: {', '.join(TEMPLATE_NAMES)}")
    p.add_argument("--html", action="store_true", help="the HTML part instead of subject and text")
    p.add_argument("--out", metavar="FILE", help="write to FILE instead of the terminal")
    p.set_defaults(func=cmd_preview)
