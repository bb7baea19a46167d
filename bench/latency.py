"""Latency from an event to the person who must see it, measured from outside a running `mailflow run`.

    python bench/latency.py [--part relay|bounce] [--n 20] [--db sqlite|postgresql|both] [--pg-admin URL]

Parts (each prints its median and worst, per database, and the ratio to its target):
- ``bounce``: a bounce put into the mailbox (IMAP APPEND to a throw-away Dovecot) → its support item in
  the database, with a real `mailflow run --role worker` reading the mailbox (IMAP IDLE); N bounces of
  N mails sent to N applicants, with random gaps of 0.2–1.0 s. Target: worst < 3 s.
- ``relay``: the 201 of `POST /api/applications` → its registration-received mail at an outside SMTP
  sink: `mailflow run` in relay mode (default settings: the 2 s poll behind the wake-up on commit) sends
  to an aiosmtpd sink in another process, which notes when each mail arrived; N registrations one after
  another with random gaps of 0.1–1.5 s. Target: worst < 300 ms. The sink and the client read the same
  wall clock (one host), so a mail may even arrive before the client has read its 201 (a negative time).
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from imapclient import IMAPClient  # noqa: E402
from sqlalchemy import select  # noqa: E402

from bench.inbound import database, settings_for  # noqa: E402
from bench.scale import ADMIN  # noqa: E402
from mailflow import leases  # noqa: E402
from mailflow.accounts.rules import ubn_checksum_ok  # noqa: E402
from mailflow.context import AppContext  # noqa: E402
from mailflow.inbound.imap import MailboxWatcher  # noqa: E402
from mailflow.models import SupportItem  # noqa: E402
from tests.factories import add_applicant  # noqa: E402
from tests.inbound.dovecot import DovecotServer, start_dovecot  # noqa: E402
from tests.inbound.test_intake_helpers import dsn, sent_mail  # noqa: E402
from tests.peers import wait_until  # noqa: E402

BOUNCE_TARGET_S = 3.0
RELAY_TARGET_S = 0.3


def worker(url: str, dovecot: DovecotServer, workdir: Path) -> subprocess.Popen[bytes]:
    """`mailflow run --role worker` reading the Dovecot mailbox, its log in workdir/worker.log."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILFLOW_")}
    env.update({
        "MAILFLOW_DATABASE__URL": url, "MAILFLOW_HTTP__PORT": "0", "MAILFLOW_SMTP__MODE": "capture",
        "MAILFLOW_STORAGE__DOCUMENTS_DIR": str(workdir / "documents"),
        "MAILFLOW_INBOUND__IMAP_HOST": dovecot.host, "MAILFLOW_INBOUND__IMAP_PORT": str(dovecot.port),
        "MAILFLOW_INBOUND__IMAP_SSL": "false", "MAILFLOW_INBOUND__IMAP_USER": dovecot.user,
        "MAILFLOW_INBOUND__IMAP_PASSWORD": dovecot.password, "PYTHONUNBUFFERED": "1",
    })
    log = (workdir / "worker.log").open("wb")
    return subprocess.Popen([sys.executable, "-m", "mailflow", "run", "--role", "worker"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)


def bounce_latency(url: str, n: int) -> list[float]:
    """Seconds from each APPEND to the bounce's support item."""
    dovecot = start_dovecot()
    ctx = AppContext.from_settings(settings_for(url))
    with tempfile.TemporaryDirectory() as folder:
        proc = worker(url, dovecot, Path(folder))
        try:
            mails = [sent_mail(ctx, add_applicant(ctx, account=f"late{i:03d}", email=f"late{i}@example.com"))
                     for i in range(n)]
            wait_until(lambda: leases.holder_of(ctx.db, MailboxWatcher.LEASE) is not None, 60,
                       "the worker to take the IMAP mailbox", check=lambda: _alive(proc, folder))
            time.sleep(1.0)  # its first pass done, the worker waits in IDLE
            client = IMAPClient(dovecot.host, dovecot.port, ssl=False, timeout=60)
            client.login(dovecot.user, dovecot.password)
            took = []
            for mail in mails:
                time.sleep(random.uniform(0.2, 1.0))
                raw = dsn(ctx.settings, mail)
                started = time.perf_counter()
                client.append("INBOX", raw)
                _wait_for_item(ctx, mail.id, lambda: _alive(proc, folder))
                took.append(time.perf_counter() - started)
            client.logout()
            return took
        finally:
            proc.terminate()
            proc.wait(timeout=60)
            ctx.db.dispose()
            dovecot.stop()


def _wait_for_item(ctx: AppContext, outbox_id: int, check: Callable[[], None]) -> None:
    deadline = time.monotonic() + 60
    while True:
        with ctx.db.session() as session:
            if session.scalar(select(SupportItem.id).where(SupportItem.outbox_id == outbox_id)) is not None:
                return
        check()
        if time.monotonic() > deadline:
            raise RuntimeError(f"no support item for outbox {outbox_id} after 60 s")
        time.sleep(0.01)


def _alive(proc: subprocess.Popen[bytes], folder: str) -> None:
    if proc.poll() is not None:
        log = (Path(folder) / "worker.log").read_text(errors="replace")
        raise RuntimeError("the worker died:\n" + log[-3000:])


# --- relay: registration 201 -> the mail at an outside sink ------------------------------------------

PDF = b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
SINK_WAIT_S = 30.0  # a mail not at the sink by then stops the run


def serve_sink() -> None:
    """Child mode (--serve-sink): accept every mail and print "<arrival time> <recipient>" as each
    arrives; the port first; stop when stdin closes."""
    from mailflow.mail.capture import start_controller

    class Sink:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            print(f"{time.time():.6f} {envelope.rcpt_tos[0]}", flush=True)
            return "250 2.0.0 Ok: queued"

    controller = start_controller(Sink(), 0, data_size_limit=0)
    print(controller.port, flush=True)
    sys.stdin.read()
    controller.stop()


class SinkProcess:
    """The sink in its own process, and when each recipient's mail arrived there."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve-sink"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())
        self.arrived: dict[str, float] = {}
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            moment, recipient = line.split()
            with self.changed:
                self.arrived[recipient] = float(moment)
                self.changed.notify_all()

    def arrival_of(self, recipient: str) -> float:
        with self.changed:
            if not self.changed.wait_for(lambda: recipient in self.arrived, SINK_WAIT_S):
                raise RuntimeError(f"no mail to {recipient} at the sink after {SINK_WAIT_S:g} s")
            return self.arrived[recipient]

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def relay_daemon(url: str, sink_port: int, http_port: int, workdir: Path) -> subprocess.Popen[bytes]:
    """`mailflow run` (web and worker in one process) relaying to the sink, its log in workdir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILFLOW_")}
    env.update({
        "MAILFLOW_DATABASE__URL": url, "MAILFLOW_HTTP__PORT": str(http_port),
        "MAILFLOW_HTTP__BASE_URL": "https://hep.twport.com.tw", "MAILFLOW_SMTP__MODE": "relay",
        "MAILFLOW_SMTP__HOST": "127.0.0.1", "MAILFLOW_SMTP__PORT": str(sink_port),
        "MAILFLOW_SECURITY__SECRET_KEY": "latency-bench-secret-key-0123456789",
        "MAILFLOW_STORAGE__DOCUMENTS_DIR": str(workdir / "documents"), "PYTHONUNBUFFERED": "1",
    })
    log = (workdir / "worker.log").open("wb")
    return subprocess.Popen([sys.executable, "-m", "mailflow", "run"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)


def new_ubn(taken: set[str]) -> str:
    while True:
        candidate = f"{random.randrange(10**8):08d}"
        if candidate not in taken and ubn_checksum_ok(candidate):
            taken.add(candidate)
            return candidate


def register(client: httpx.Client, base: str, ubn: str) -> str:
    """One registration as the form sends it; the address its mail goes to."""
    tag = uuid.uuid4().hex[:10]
    email = f"clerk-{tag}@example.com"
    fields = {"account": f"clerk{tag}", "name": "王小明", "mobile": "0912345678", "email": email,
              "password": "Harbour2024", "password_confirm": "Harbour2024", "ubn": ubn,
              "company_phone": "02-12345678#12345", "company_name": "臺灣港務股份有限公司基隆分公司",
              "company_address": "804004高雄市鼓山區蓬萊路10號", "company_owner": "陳大文"}
    answer = client.post(f"{base}/api/applications", data=fields,
                         files={"document": ("營業登記.pdf", PDF, "application/pdf")})
    if answer.status_code != 201:
        raise RuntimeError(f"the registration answered {answer.status_code}: {answer.text[:300]}")
    return email


def relay_latency(url: str, n: int) -> list[float]:
    """Seconds from each registration's 201 to its mail at the sink."""
    sink = SinkProcess()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as folder, httpx.Client(timeout=30) as client:
        proc = relay_daemon(url, sink.port, port, Path(folder))
        try:
            wait_until(lambda: _answers(client, f"{base}/healthz"), 60, "mailflow to serve HTTP",
                       check=lambda: _alive(proc, folder))
            taken: set[str] = set()
            took = []
            for _ in range(n):
                time.sleep(random.uniform(0.1, 1.5))
                email = register(client, base, new_ubn(taken))
                answered = time.time()
                took.append(sink.arrival_of(email) - answered)
            return took
        finally:
            proc.terminate()
            proc.wait(timeout=60)
            sink.stop()


def _answers(client: httpx.Client, url: str) -> bool:
    try:
        return client.get(url).status_code == 200
    except httpx.TransportError:
        return False


# Each part: (name, function(url, n) -> seconds per event, target in seconds for the worst).
PARTS: dict[str, tuple[Callable[[str, int], list[float]], float]] = {
    "relay": (relay_latency, RELAY_TARGET_S),
    "bounce": (bounce_latency, BOUNCE_TARGET_S),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=[*PARTS, "all"], default="all")
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--pg-admin", default=ADMIN)
    parser.add_argument("--serve-sink", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_sink:
        serve_sink()
        return
    print(f"cores {os.cpu_count()}, load average before {os.getloadavg()[0]:.2f}")
    for name in (PARTS if args.part == "all" else [args.part]):
        measure, target = PARTS[name]
        for kind in (["sqlite", "postgresql"] if args.db == "both" else [args.db]):
            with database(kind, args.pg_admin) as url:
                took = measure(url, args.n)
            worst = max(took)
            print(f"[{kind}] {name}: n={len(took)} median {statistics.median(took) * 1000:.0f} ms, "
                  f"worst {worst * 1000:.0f} ms ({worst / target:.2f} x the {target:g} s limit)")
    print(f"load average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
