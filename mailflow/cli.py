"""The `mailflow` command: `mailflow [--config FILE] COMMAND ...`."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# Each module adds its own subcommands; a new command group is a new module here.
COMMAND_MODULES = (
    "mailflow.commands.core",
    "mailflow.commands.review",
    "mailflow.commands.staff",
    "mailflow.commands.outbox",
    "mailflow.cli_bounce",
    "mailflow.commands.inbound",
    "mailflow.commands.support",
    "mailflow.commands.preview",
    "mailflow.commands.demo",
    "mailflow.commands.apikey",
    "mailflow.commands.webhook",
    "mailflow.commands.documents",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mailflow", description="港區通行證通用管理系統 mail service")
    parser.add_argument("--config", metavar="FILE", help="TOML settings (default: $MAILFLOW_CONFIG, "
                        "else config/mailflow.toml)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)  # a module that fails to import fails the command
    return parser


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    if _command_of(words) == "bounce":
        # `bounce parse` only reads files and prints JSON: no settings, database, web or scheduler
        # modules, so a one-file run starts in a fraction of the time (docs/BENCHMARKS.md)
        from mailflow.cli_bounce import main as bounce_main

        try:
            return bounce_main(words[words.index("bounce") + 1 :], prog="mailflow bounce")
        except BrokenPipeError:
            return stdout_closed()
    import logging

    from mailflow.config import ConfigError, StartupError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Library chatter (Alembic's plugins, aiosmtpd's per-connection lines) is not for operators.
    for noisy in ("alembic", "mail.log"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # here, not at exit, so a reader that went away is caught below
        return code
    except BrokenPipeError:
        return stdout_closed()
    except ConfigError as exc:
        print(f"mailflow: configuration error: {exc}", file=sys.stderr)
        return 2
    except StartupError as exc:
        print(f"mailflow: cannot start: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _command_of(words: list[str]) -> str:
    """The command word of `mailflow [--config FILE] COMMAND ...` ('' when there is none)."""
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word == "--config":
            skip = True
        elif not word.startswith("-"):
            return word
    return ""


# What a process killed by SIGPIPE reports (128 + 13): a pipe's reader leaving early, as in `| head -1`.
EXIT_PIPE_CLOSED = 141


def stdout_closed() -> int:
    """The reader of our stdout went away (`mailflow outbox list | head -1`): stop quietly, like the
    classic tools. Python ignores SIGPIPE, so the write raised instead; stdout is pointed at /dev/null so
    the interpreter's own flush at exit does not raise (and print) the same error again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_PIPE_CLOSED


if __name__ == "__main__":
    raise SystemExit(main())
