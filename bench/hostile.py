"""Hostile mails: how long `analyze()` takes for one mail built to make a parser slow.

Usage: python bench/hostile.py [--size 400000] [--limit 2.0]

Then the same for sender authentication of a reply (`sender_auth.judge`, DKIM verification on, our
authserv-id set): Authentication-Results and DKIM-Signature headers of one unit repeated.

Each case is a megabyte-sized mail (under the 1 MiB cap analyze() reads) made of one unit repeated —
blanks, bullets, dashes, "=?", digits, dots, carriage returns, address-like runs — placed in a bounce
notice's text, a DSN's Diagnostic-Code, the Subject, the From, or a reply's In-Reply-To and body.
Patterns that backtrack over such a run (two adjacent `\\s*`, a run that can be split between two
quantifiers, the stdlib's encoded-word pattern) turn it into seconds: one such mail stalls the worker
reading the mailbox, and the bounce behind it waits. Limit: no case over --limit seconds (bounce ->
support item must stay under 3 s, docs/BENCHMARKS.md). Each case is also timed with the stdlib's MIME
parser (MAILFLOW_REFERENCE_PATHS' form) for comparison. Figures only, no assertions.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mailflow import reference  # noqa: E402
from mailflow.config import Settings, load_settings  # noqa: E402
from mailflow.inbound import sender_auth  # noqa: E402
from mailflow.inbound.analysis import analyze  # noqa: E402

HEAD = b"From: MAILER-DAEMON@example.org\nSubject: Undelivered Mail Returned to Sender\nTo: a@example.com\n"
REPORT = (
    b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n--b\n'
    b"Content-Type: message/delivery-status\n\nFinal-Recipient: rfc822; x@example.net\nAction: failed\n"
    b"Status: 5.0.0\nDiagnostic-Code: smtp; "
)
UNITS = [b"a", b"1", b".", b"-", b" ", b"\t", b"*", b"#", b"<", b"@", b"a@", b"@a", b"5.", b"=", b"\r",
         b"\x0c", b"550 ", b"<<< ", b">>> ", b"- ", b"recipient: ", b"SMTP", b"=?", b"?=", b"=?utf-8?q?a",
         b"a.b@", b"\"", b"\n ", b"\xe4\xb8\xad"]


def cases(size: int) -> list[tuple[str, bytes]]:
    made = []
    for unit in UNITS:
        n = size // len(unit)
        made += [
            (f"notice  {unit!r}", HEAD + b"\n" + unit * n),
            (f"diag    {unit!r}", REPORT + unit * n + b"\n\n--b--\n"),
            (f"subject {unit!r}", HEAD.replace(b"Undelivered Mail", b"Undelivered " + unit * (n // 4))
             + b"\nx\n"),
            (f"from    {unit!r}", HEAD.replace(b"MAILER-DAEMON@example.org", unit * (n // 4)) + b"\nx\n"),
            (f"reply   {unit!r}", b"From: a@example.com\nSubject: Re: x\nIn-Reply-To: <" + unit * (n // 4)
             + b">\n\n" + unit * n),
        ]
    return made


AUTH_UNITS = [b" ", b"(", b"a", b"1", b";", b"=", b'"', b"\\", b"a=b;", b'a="', b"a.", b"-a", b"a/1=", b"\t"]


DKIM_HEAD = b"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=x; h=from; bh=; b="


def auth_cases(size: int) -> list[tuple[str, bytes]]:
    head = b"From: a@example.com\nSubject: Re: x\n"
    made = []
    for unit in AUTH_UNITS:
        n = size // 4 // len(unit)
        made += [
            (f"A-R  {unit!r}", head + b"Authentication-Results: mx.example.org; " + unit * n + b"\n\nx\n"),
            (f"DKIM {unit!r}", head + DKIM_HEAD + unit * n + b"\n\nx\n"),
        ]
    return made


def judged(raw: bytes, settings: Settings) -> float:
    start = time.perf_counter()
    sender_auth.judge(raw, settings, from_address="a@example.com", lookup=lambda *_args, **_kw: None)
    return time.perf_counter() - start


def timed(raw: bytes) -> float:
    start = time.perf_counter()
    analyze(raw)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=400_000)
    parser.add_argument("--limit", type=float, default=2.0)
    parser.add_argument("--show", type=int, default=8, help="the slowest cases to list")
    args = parser.parse_args()
    print(f"cores {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}, size {args.size} bytes a unit run")
    analyze(HEAD + b"\nwarm\n")
    rows = []
    for name, raw in cases(args.size):
        reference.ON = False
        fast = timed(raw)
        reference.ON = True
        plain = timed(raw)
        rows.append((fast, plain, name))
    reference.ON = False
    rows.sort(reverse=True)
    for fast, plain, name in rows[: args.show]:
        print(f"{name:28s} {fast * 1000:8.1f} ms   (stdlib MIME parser: {plain * 1000:8.1f} ms)")
    worst = rows[0][0]
    print(f"{len(rows)} cases; worst {worst:.2f} s ({worst / args.limit:.2f}x the {args.limit} s limit); "
          f"median {sorted(r[0] for r in rows)[len(rows) // 2] * 1000:.1f} ms")
    settings = load_settings(None, {"MAILFLOW_DATA_DIR": "/tmp/mailflow-bench-hostile"})
    settings = settings.updated(inbound={"dkim_verify": True, "authserv_id": "mx.example.org"})
    auth = sorted(((judged(raw, settings), name) for name, raw in auth_cases(args.size)), reverse=True)
    for seconds, name in auth[:3]:
        print(f"sender_auth {name:20s} {seconds * 1000:8.1f} ms")
    print(f"{len(auth)} sender-authentication cases ({args.size // 4} bytes a run); worst {auth[0][0]:.2f} s "
          f"({auth[0][0] / args.limit:.2f}x the {args.limit} s limit)")


if __name__ == "__main__":
    main()
