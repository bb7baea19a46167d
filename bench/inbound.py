"""Inbound throughput: mails read from IMAP, a re-poll with nothing new, and the inbound SMTP server's
intake beside a bare aiosmtpd sink.

    python bench/inbound.py [--n 1000] [--smtp-n 500] [--rounds 3] [--db sqlite|postgresql|both]
                            [--part imap|smtp|both] [--smtp-sessions 1,8] [--pg-admin URL]

For each database (a fresh temporary SQLite file; a fresh PostgreSQL database created and dropped through
--pg-admin):
1. A mixed set of N mails — the bounce corpus (/work/shared/corpus/bounces when present) and
   tests/inbound/samples, plus bounces of our own mails (signed return-path tag), complaints, auto-replies
   and replies from applicants made for the run — each made unique by one added header, APPENDed to a
   throw-away Dovecot (setup, not measured).
2. `imap.poll`: every mail fetched, stored, classified, routed and moved to mailflow/processed (or
   quarantine) — mails/s against the target 300, and mails per CPU second of this process (Dovecot's
   and the database server's time not counted), which a shared machine's load does not change.
3. Re-poll with nothing new: the whole `imap.poll` (connect, login, select, search) and the pass the
   IDLE reader makes on its open connection (`poll_once`), median of 5 — against the target 100 ms.
4. SMTP: the same kind of mails (new copies) sent over one smtplib connection, then over 8 at once (as
   an MTA with a queue for us sends), to mailflow's inbound SMTP server (commits each mail before its
   250; the mails of concurrent sessions in one commit) and to a bare aiosmtpd sink that accepts and
   forgets; each in its own process, alternating rounds so that load from elsewhere weighs on both —
   ratio against 0.5. Beside it the mails per CPU second of each server process (all its threads; the
   database server's time not counted), which the machine's load changes far less than the rates.
The load average is printed before and after; the machine's core count with the figures.
"""

from __future__ import annotations

import argparse
import os
import re
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from imapclient import IMAPClient  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from bench.scale import ADMIN, fresh_database  # noqa: E402
from mailflow.config import Settings, load_settings  # noqa: E402
from mailflow.context import AppContext  # noqa: E402
from mailflow.db import Database, init_schema  # noqa: E402
from mailflow.inbound import imap  # noqa: E402
from mailflow.models import InboundMessage, SupportItem  # noqa: E402
from tests.factories import add_applicant  # noqa: E402
from tests.inbound.dovecot import DovecotServer, start_dovecot  # noqa: E402
from tests.inbound.test_intake_helpers import (  # noqa: E402
    autoreply,
    complaint,
    dsn,
    reply,
    sent_mail,
)

CORPUS = Path("/work/shared/corpus/bounces")
SAMPLES = ROOT / "tests" / "inbound" / "samples"
IMAP_TARGET, REPOLL_TARGET_MS, SMTP_TARGET = 300.0, 100.0, 0.5


def corpus_mails() -> list[bytes]:
    files = sorted(p for folder in (CORPUS, SAMPLES) if folder.is_dir() for p in folder.glob("*.eml"))
    return [p.read_bytes() for p in files]


def our_mails(ctx: AppContext, applicants: int) -> list[bytes]:
    """Bounces, complaints, auto-replies and replies about mails we sent to applicants of this run."""
    made: list[bytes] = []
    for i in range(applicants):
        who = add_applicant(ctx, account=f"bench{i:04d}", email=f"user{i}@example.com")
        mail = sent_mail(ctx, who)
        made += [dsn(ctx.settings, mail), complaint(ctx.settings, mail) if i % 4 == 0 else autoreply(mail),
                 reply(who.email, f"請問第 {i} 號申請什麼時候審核?", in_reply_to=mail.message_id),
                 reply(who.email, "我的公司電話換了。")]
    return made


def mixed(ctx: AppContext, n: int, tag: str) -> list[bytes]:
    """N unique mails: about a third ours, the rest the corpus, cycled."""
    ours = our_mails(ctx, max(1, n // 12))
    pool = corpus_mails() + ours
    return [f"X-Bench-Copy: {tag}-{i}\r\n".encode() + pool[i % len(pool)] for i in range(n)]


def kinds(db: Database) -> dict[str, int]:
    with db.session() as session:
        rows = session.execute(select(InboundMessage.kind, InboundMessage.status, func.count())
                               .group_by(InboundMessage.kind, InboundMessage.status)).all()
    found: Counter[str] = Counter()
    for kind, status, count in rows:
        found[f"{kind or '-'}/{status}"] += count
    return dict(found)


def settings_for(url: str, dovecot: DovecotServer | None = None) -> Settings:
    env = {"MAILFLOW_DATABASE__URL": url, "MAILFLOW_SMTP__MODE": "capture",
           "MAILFLOW_INBOUND__DNS_RESOLVER": os.environ.get("BENCH_DNS", "")}
    settings = load_settings(None, {k: v for k, v in env.items() if v})
    if dovecot is not None:
        settings = settings.updated(inbound={"imap_host": dovecot.host, "imap_port": dovecot.port,
                                             "imap_ssl": False, "imap_user": dovecot.user,
                                             "imap_password": dovecot.password})
    return settings


@contextmanager
def database(kind: str, admin: str) -> Iterator[str]:
    if kind == "postgresql":
        with fresh_database(admin) as url:
            yield url
        return
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        db = Database(url)
        init_schema(db)
        db.dispose()
        yield url


def measure_imap(url: str, n: int) -> dict[str, Any]:
    dovecot = start_dovecot()
    try:
        ctx = AppContext.from_settings(settings_for(url, dovecot))
        mails = mixed(ctx, n, "imap")
        client = IMAPClient(dovecot.host, dovecot.port, ssl=False, timeout=60)
        client.login(dovecot.user, dovecot.password)
        for raw in mails:
            client.append("INBOX", raw)
        started, cpu = time.perf_counter(), time.process_time()
        result = imap.poll(ctx)
        took, cpu = time.perf_counter() - started, time.process_time() - cpu
        assert result is not None and result.seen == n, result
        processed = int(client.folder_status("mailflow/processed", [b"MESSAGES"])[b"MESSAGES"])
        quarantined = int(client.folder_status("mailflow/quarantine", [b"MESSAGES"])[b"MESSAGES"])
        client.logout()
        with ctx.db.session() as session:
            stored = session.scalar(select(func.count(InboundMessage.id))) or 0
            items = session.scalar(select(func.count(SupportItem.id))) or 0
        assert stored == n and processed + quarantined == n, (stored, processed, quarantined)
        full, open_pass = [], []
        for _ in range(5):
            t0 = time.perf_counter()
            again = imap.poll(ctx)
            full.append((time.perf_counter() - t0) * 1000)
            assert again is not None and again.seen == 0
        reader = imap.connect(ctx.settings)
        try:
            folders = imap.ensure_folders(reader)  # once per connection, as the IDLE reader does
            for _ in range(5):
                t0 = time.perf_counter()
                imap.poll_once(ctx, reader, folders)
                open_pass.append((time.perf_counter() - t0) * 1000)
        finally:
            reader.logout()
        figures = {"seconds": took, "mails_per_s": n / took, "mails_per_cpu_s": n / cpu, "items": items,
                   "processed": processed,
                   "quarantined": quarantined, "kinds": kinds(ctx.db),
                   "repoll_ms": statistics.median(full), "open_pass_ms": statistics.median(open_pass)}
        ctx.db.dispose()
        return figures
    finally:
        dovecot.stop()


# --- SMTP -------------------------------------------------------------------------------------


def serve(which: str, url: str) -> None:
    """Child mode: the inbound server on ``url``'s database, or a bare sink; prints its port, runs until
    stdin closes."""
    if which == "bare":
        from bench.dispatch import serve_sink

        serve_sink()
        return
    import logging

    from mailflow.inbound.smtp_server import start_inbound_server

    logging.basicConfig(level=logging.ERROR)

    settings = settings_for(url).updated(inbound={"smtp_host": "127.0.0.1", "smtp_port": 0})
    ctx = AppContext.from_settings(settings)
    server = start_inbound_server(ctx)
    print(server.port, flush=True)
    sys.stdin.read()
    server.drain()
    server.stop()


def start_server(which: str, url: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen([sys.executable, __file__, "--serve", which, url], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def fits_smtp(raw: bytes) -> bool:
    """SMTP lines are at most 1000 octets (RFC 5321 4.5.3.1.6); a few corpus files, saved from mailboxes,
    have longer ones, which any SMTP server (aiosmtpd too) refuses."""
    return all(len(line) <= 998 for line in raw.splitlines())


def send_all(port: int, mails: list[bytes], sessions: int = 1) -> float:
    """Seconds to hand every mail over on ``sessions`` connections at once (each DATA answered; the
    mails dealt out in turn), as an MTA with mail queued for us opens several."""
    def send(part: list[bytes]) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=120) as smtp:
            for raw in part:
                # To the reply address's domain, as replies come; bounces carry their tag in the headers.
                smtp.sendmail("MAILER-DAEMON@mx.example.net", ["hep@twport.com.tw"], raw)

    started = time.perf_counter()
    with ThreadPoolExecutor(sessions) as pool:
        list(pool.map(send, [mails[i::sessions] for i in range(sessions)]))
    return time.perf_counter() - started


def measure_smtp(url: str, n: int, rounds: int, sessions: int = 1) -> dict[str, float]:
    ctx = AppContext.from_settings(settings_for(url))
    # On the wire every line ends in CRLF (smtplib sends bytes as they are).
    mails = [re.sub(rb"\r?\n", b"\r\n", raw) for raw in mixed(ctx, n * rounds * 2, "smtp")
             if fits_smtp(raw)][:n * rounds]
    ctx.db.dispose()
    inbound, inbound_port = start_server("inbound", url)
    bare, bare_port = start_server("bare", url)
    took = {"inbound": 0.0, "bare": 0.0}
    cpu = {"inbound": 0.0, "bare": 0.0}  # of each server process while its mails were sent
    backlog = []  # seconds from the last 250 until every mail of the round was processed
    db = Database(url)
    try:
        for r in range(rounds):
            batch = mails[r * n:(r + 1) * n]
            for which, proc, port in (("bare", bare, bare_port), ("inbound", inbound, inbound_port)):
                before = process_cpu(proc.pid)
                took[which] += send_all(port, batch, sessions)
                cpu[which] += process_cpu(proc.pid) - before
            sent_at = time.perf_counter()
            while unprocessed(db):
                time.sleep(0.05)
            backlog.append(time.perf_counter() - sent_at)
    finally:
        db.dispose()
        for proc in (inbound, bare):
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=300)
    total = n * rounds
    return {"inbound_per_s": total / took["inbound"], "bare_per_s": total / took["bare"],
            "ratio": took["bare"] / took["inbound"], "backlog_s": max(backlog),
            "inbound_per_cpu_s": total / max(cpu["inbound"], 1e-9),
            "bare_per_cpu_s": total / max(cpu["bare"], 1e-9)}


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a child process has used so far, all its threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def unprocessed(db: Database) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count(InboundMessage.id))
                                  .where(InboundMessage.status == "stored")) or 0)


def imap_part(kind: str, admin: str, n: int) -> None:
    with database(kind, admin) as url:
        got = measure_imap(url, n)
        rate = got["mails_per_s"]
        print(f"[{kind}] IMAP: {n} mails in {got['seconds']:.2f} s = {rate:.0f} mails/s "
              f"({rate / IMAP_TARGET:.2f} x the {IMAP_TARGET:.0f} target); {got['processed']} processed, "
              f"{got['quarantined']} quarantined, {got['items']} support items; "
              f"{got['mails_per_cpu_s']:.0f} mails per CPU second of this process (on a loaded machine "
              f"the wall-clock rate shows the share of the cores it got)")
        print(f"[{kind}]   kinds: {got['kinds']}")
        print(f"[{kind}] re-poll, nothing new: whole poll {got['repoll_ms']:.1f} ms "
              f"({got['repoll_ms'] / REPOLL_TARGET_MS:.2f} x the {REPOLL_TARGET_MS:.0f} ms limit); "
              f"open connection {got['open_pass_ms']:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--smtp-n", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--part", choices=["imap", "smtp", "both"], default="both")
    parser.add_argument("--smtp-sessions", type=lambda v: [int(x) for x in v.split(",")], default=[1, 8],
                        help="SMTP connections at once, one run each (default 1,8)")
    parser.add_argument("--pg-admin", default=ADMIN)
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve)
        return
    print(f"cores {os.cpu_count()}, load average before {os.getloadavg()[0]:.2f}")
    for kind in (["sqlite", "postgresql"] if args.db == "both" else [args.db]):
        if args.part != "smtp":
            imap_part(kind, args.pg_admin, args.n)
        if args.part == "imap":
            continue
        for sessions in args.smtp_sessions:
            with database(kind, args.pg_admin) as url:
                smtp = measure_smtp(url, args.smtp_n, args.rounds, sessions)
            print(f"[{kind}] SMTP, {sessions} session(s) at once: inbound server {smtp['inbound_per_s']:.0f} "
                  f"mails/s, bare aiosmtpd sink {smtp['bare_per_s']:.0f} mails/s: ratio {smtp['ratio']:.2f} "
                  f"(target >= {SMTP_TARGET}); mails per CPU second of the server process "
                  f"{smtp['inbound_per_cpu_s']:.0f} / {smtp['bare_per_cpu_s']:.0f}; every mail of a round "
                  f"processed {smtp['backlog_s']:.1f} s after its last 250")
    print(f"load average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
