"""`mailflow staff add NAME --role reviewer|support|admin`, `staff password NAME` and `staff list`: staff
logins for /review and /support. The password comes from a prompt, or from stdin with --password-stdin
(for scripts)."""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from sqlalchemy import func, select

from mailflow.commands import app_context
from mailflow.commands.table import minute, print_table
from mailflow.models import StaffRole, StaffUser
from mailflow.passwords import hash_password
from mailflow.timeutil import iso_taipei

MIN_PASSWORD = 10


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
    if password is not None and len(password) < MIN_PASSWORD:
        print(f"mailflow: the password must have at least {MIN_PASSWORD} characters", file=sys.stderr)
        return None
    return password


def cmd_add(args: argparse.Namespace) -> int:
    name = args.name.strip()
    if not name or len(name) > 60 or any(ch.isspace() for ch in name):
        print("mailflow: NAME must be 1-60 characters without spaces", file=sys.stderr)
        return 2
    password = new_password(args.password_stdin)
    if password is None:
        return 2
    ctx = app_context(args)
    try:
        with ctx.db.session() as session:
            taken = session.scalar(select(StaffUser.id).where(func.lower(StaffUser.name) == name.lower()))
            if taken is not None:
                print(f"mailflow: staff {name!r} already exists", file=sys.stderr)
                return 1
            session.add(StaffUser(name=name, role=args.role, password_hash=hash_password(password)))
    finally:
        ctx.db.dispose()
    print(f"staff {name} added with role {args.role}")
    return 0


def cmd_password(args: argparse.Namespace) -> int:
    """A new password for a staff login; every session of that person ends (a kept cookie included)."""
    password = new_password(args.password_stdin)
    if password is None:
        return 2
    ctx = app_context(args)
    try:
        with ctx.db.session() as session:
            key = args.name.strip().lower()
            staff = session.scalar(select(StaffUser).where(func.lower(StaffUser.name) == key))
            if staff is None:
                print(f"mailflow: no staff {args.name!r}", file=sys.stderr)
                return 1
            staff.password_hash = hash_password(password)
            staff.session_generation += 1
            name = staff.name
    finally:
        ctx.db.dispose()
    print(f"password of staff {name} changed; their sessions have ended")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    ctx = app_context(args)
    try:
        with ctx.db.session() as session:
            rows = session.scalars(select(StaffUser).order_by(StaffUser.name)).all()
            items = [{"name": s.name, "role": s.role, "disabled": s.disabled,
                      "locked_until": iso_taipei(s.locked_until)} for s in rows]
    finally:
        ctx.db.dispose()
    if args.json:
        print(json.dumps(items, ensure_ascii=False))
        return 0
    table = [[str(item["name"]), str(item["role"]), "disabled" if item["disabled"] else "active",
             minute(item["locked_until"]) if item["locked_until"] else ""] for item in items]
    print_table(["NAME", "ROLE", "STATE", "LOCKED UNTIL"], table,
                "no staff logins yet: mailflow staff add NAME --role reviewer|support|admin")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    staff = sub.add_parser("staff", help="staff logins for /review and /support")
    actions = staff.add_subparsers(dest="staff_command", metavar="ACTION", required=True)
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
