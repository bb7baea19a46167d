"""`mailflow bounce parse FILE...`: one JSON line per file (see CONTRACT.md).

`register(subparsers)` adds the `bounce` command to the main CLI; running this
module directly (`python -m mailflow.cli_bounce parse FILE...`) works too.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from mailflow.inbound.analysis import analyze


def register(subparsers: Any) -> None:
    """Add `bounce parse FILE...` to an argparse subparsers object."""
    bounce = subparsers.add_parser("bounce", help="bounce tools")
    sub = bounce.add_subparsers(dest="bounce_command", required=True)
    parse = sub.add_parser("parse", help="parse bounce files, one JSON line per file")
    parse.add_argument("files", nargs="+", metavar="FILE")
    parse.set_defaults(func=run_parse)


def read_file(path: str) -> bytes | None:
    """The file's bytes, or None after saying on stderr why it cannot be read."""
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        print(f"mailflow bounce parse: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return None


def result_line(path: str, raw: bytes | None) -> dict[str, Any]:
    """The contract's JSON object for one file; an unreadable one (raw None) still gets its line, kind
    "other"."""
    if raw is None:
        return {"file": path, "kind": "other", "recipients": []}
    analysis = analyze(raw)
    return {
        "file": path,
        "kind": analysis.kind,
        "recipients": [
            {
                "address": r.address,
                "action": r.action,
                "hard": r.hard,
                "reason": r.reason,
                "status": r.status,
                "diagnostic": r.diagnostic,
            }
            for r in analysis.recipients
        ],
    }


def run_parse(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Every file gets its line; the exit code is 1 when any file could not be read (a script notices a
    typo in a path), 0 otherwise."""
    stream = out or sys.stdout
    unreadable = 0
    for path in args.files:
        raw = read_file(path)
        unreadable += raw is None
        stream.write(json.dumps(result_line(path, raw), ensure_ascii=False) + "\n")
        stream.flush()
    if unreadable:
        print(f"mailflow bounce parse: {unreadable} of {len(args.files)} file(s) could not be read",
              file=sys.stderr)
    return 1 if unreadable else 0


def main(argv: Sequence[str] | None = None, prog: str = "mailflow-bounce") -> int:
    """`bounce parse FILE...` on its own: what `mailflow bounce ...` runs without loading the rest."""
    parser = argparse.ArgumentParser(prog=prog, description="bounce tools")
    sub = parser.add_subparsers(dest="command", required=True)
    parse = sub.add_parser("parse", help="parse bounce files, one JSON line per file")
    parse.add_argument("files", nargs="+", metavar="FILE")
    args = parser.parse_args(argv)
    return run_parse(args)


if __name__ == "__main__":
    raise SystemExit(main())
