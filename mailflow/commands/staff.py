"""`mailflow staff add NAME --role reviewer|support|admin`, `staff password NAME` and `staff list`: staff
logins for /review and /support. The password comes from a prompt, or from stdin with --password-stdin
(for scripts). What a staff login is and may be is mailflow.staff's; this module reads arguments and
prints."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.orm import Session

from mailflow import staff
from mailflow.commands import in_session
from mailflow.commands.table import minute, print_table
from mailflow.models import StaffRole

T = TypeVar("T")


def read_password(from_stdin: bool) -> str | None:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    try:
        first = getpass.getpass("密碼 (password): ")
        again = getpass.getpass("確認密碼 (again): ")
    except EOFError:  # no terminal and nothing on stdin: a script that forgot --password-stdin
        print("mailflow: no password given; type it at the prompt or pipe it with --password-stdin",
              file=sys.stderr)
        return None
    if first != again:
        print("mailflow: the two passwords differ", file=sys.stderr)
        return None
    return first


def new_password(from_stdin: bool) -> str | None:
    """A password long enough for a staff login, or None (the reason printed)."""
    password = read_password(from_stdin)
    problem = staff.password_problem(password) if password is not None else None
    if problem is not None:
        print(f"mailflow: {problem}", file=sys.stderr)
        return None
    return password


def _in_session(args: argparse.Namespace, change: Callable[[Session], T]) -> T | None:
    """Run ``change`` in one transaction; None (the refusal printed) when mailflow.staff refuses it."""
    try:
        return in_session(args, change)
    except staff.StaffRefused as exc:
        print(f"mailflow: {exc}", file=sys.stderr)
        return None


def cmd_add(args: argparse.Namespace) -> int:
    name = args.name.strip()
    problem = staff.name_problem(name)
    if problem is not None:
        print(f"mailflow: {problem}", file=sys.stderr)
        return 2
    password = new_password(args.password_stdin)
    if password is None:
        return 2
    if _in_session(args, lambda session: staff.add(session, name, args.role, password)) is None:
        return 1
    print(f"staff {name} added with role {args.role}")
    return 0


def cmd_password(args: argparse.Namespace) -> int:
    """A new password for a staff login; every session of that person ends (a kept cookie included)."""
    password = new_password(args.password_stdin)
    if password is None:
        return 2
    changed = _in_session(args, lambda session: staff.set_password(session, args.name, password).name)
    if changed is None:
        return 1
    print(f"password of staff {changed} changed; their sessions have ended")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    items = in_session(args, staff.listing)
    if args.json:
        print(json.dumps(items, ensure_ascii=False))
        return 0
    table = [[str(item["name"]), str(item["role"]), "disabled" if item["disabled"] else "active",
             minute(item["locked_until"]) if item["locked_until"] else ""] for item in items]
    print_table(["NAME", "ROLE", "STATE", "LOCKED UNTIL"], table,
                "no staff logins yet: mailflow staff add NAME --role reviewer|support|admin")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = sub.add_parser("staff", help="staff logins for /review and /support")
    actions = group.add_subparsers(dest="staff_command", metavar="ACTION", required=True)
    p = actions.add_parser("add", help="add a staff login (password from a prompt or --password-stdin)")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--role", required=True, choices=list(StaffRole))
    p.add_argument("--password-stdin", action="store_true",
                   help="read the password from the first line of stdin")
    p.set_defaults(func=cmd_add)
    p = actions.add_parser("password", help="set a staff login's password (ends every session of it)")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--password-stdin", action="store_true",
                   help="read the password from the first line of stdin")
    p.set_defaults(func=cmd_password)
    p = actions.add_parser("list", help="list staff logins")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)
