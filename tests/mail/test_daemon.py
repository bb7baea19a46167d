"""`mailflow run` as a real process: a new user registers and sees the mail at /dev/mailbox; a daemon killed
with SIGKILL in the middle of a 2,000-mail dispatch and started again delivers every mail."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from email.parser import BytesHeaderParser
from email.policy import default
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from mailflow.db import Database, init_schema
from mailflow.mail import states
from mailflow.mail.outbox import enqueue
from mailflow.models import OutboxMessage
from tests.mail.helpers import ScriptedSink
from tests.peers import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
PDF = b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"



class Daemon:
    """`mailflow run` of this checkout (or ``command`` run in ``cwd``, e.g. an installed wheel's)."""

    def __init__(self, env: dict[str, str], log: Path, command: list[str] | None = None,
                 cwd: Path = ROOT) -> None:
        checkout = {"PYTHONPATH": str(ROOT)} if command is None else {}
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **checkout, **env}
        self.command = command or [sys.executable, "-m", "mailflow", "run"]
        self.cwd = cwd
        self.log = log
        self.base = f"http://127.0.0.1:{env['MAILFLOW_HTTP__PORT']}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.command, cwd=self.cwd, env=self.env,
                                         stdout=out, stderr=subprocess.STDOUT)
        wait_until(self.healthy, 60, f"mailflow run to answer (log: {self.log})")

    def healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            tail = self.log.read_text()[-3000:]
            raise AssertionError(f"mailflow run exited with {self.proc.returncode}: {tail}")
        try:
            return httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def signal(self, sig: int) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=60)

    def kill_if_running(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.kill_if_running()


def base_env(db_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "MAILFLOW_DATABASE__URL": db_url,
        "MAILFLOW_HTTP__PORT": str(free_port()),
        "MAILFLOW_STORAGE__DOCUMENTS_DIR": str(tmp_path / "documents"),
        "MAILFLOW_SCHEDULE__DISPATCH_SECONDS": "0.3",
    }


def register_and_see_the_mail(daemon: Daemon) -> None:
    """The first user's story against a running daemon: the form is served, a registration is taken and
    its mail, rendered from the templates, arrives at /dev/mailbox."""
    form = httpx.get(f"{daemon.base}/register", timeout=10)
    assert form.status_code == 200 and "確定要送出申請?" in form.text
    assert httpx.get(f"{daemon.base}/static/mailflow.css", timeout=10).status_code == 200
    fields = {"account": "example1234", "name": "王小明", "mobile": "0912345678", "email": "wang@example.com",
              "password": "Harbour2024", "password_confirm": "Harbour2024", "ubn": "04595257",
              "company_phone": "02-12345678#12345", "company_name": "臺灣港務股份有限公司基隆分公司",
              "company_address": "804004高雄市鼓山區蓬萊路10號", "company_owner": "陳大文"}
    response = httpx.post(f"{daemon.base}/api/applications", data=fields,
                          files={"document": ("proof.pdf", PDF, "application/pdf")}, timeout=30)
    assert response.status_code == 201, response.text

    def arrived() -> bool:
        return bool(httpx.get(f"{daemon.base}/dev/mailbox/api/messages", params={"to": "wang@example.com"},
                              timeout=5).json())

    wait_until(arrived, 60, "the registration mail at /dev/mailbox")
    [mail] = httpx.get(f"{daemon.base}/dev/mailbox/api/messages", timeout=5).json()
    assert mail["subject"] == "通行證系統帳號註冊通知信件"
    assert mail["to"] == "wang@example.com"  # no typed name on a mail to an unverified address
    assert "感謝您在通行證系統上註冊了一個新帳號" in mail["text"]
    page = httpx.get(f"{daemon.base}/dev/mailbox", timeout=5)
    assert page.status_code == 200 and "通行證系統帳號註冊通知信件" in page.text


def test_a_new_user_registers_and_sees_the_mail_at_dev_mailbox(
    db_url: str, tmp_path: Path, daemons: list[Daemon]
) -> None:
    env = base_env(db_url, tmp_path)
    env["MAILFLOW_HTTP__BASE_URL"] = f"http://127.0.0.1:{env['MAILFLOW_HTTP__PORT']}"
    daemon = Daemon(env, tmp_path / "run.log")
    daemons.append(daemon)
    daemon.start()
    register_and_see_the_mail(daemon)
    assert daemon.signal(signal.SIGTERM) == 0


N_MAILS = 2000
BATCH = 100


@pytest.mark.once
def test_sigkill_during_dispatch_loses_nothing(tmp_path: Path, sink: ScriptedSink,
                                               daemons: list[Daemon]) -> None:
    db_url = f"sqlite:///{tmp_path / 'crash.db'}"
    db = Database(db_url)
    init_schema(db)
    with db.session() as session:
        for i in range(N_MAILS):
            enqueue(session, "registration-received", f"user{i}@example.com",
                    message_id_domain="twport.com.tw", to_name=f"使用者{i}",
                    context={"name": f"使用者{i}", "account": f"user{i}", "company_name": "測試公司",
                             "ubn": "04595257", "submitted_at": "2026-01-02T03:04:05+00:00"})
    expected = set(db.engine.connect().execute(select(OutboxMessage.message_id)).scalars())
    env = {**base_env(db_url, tmp_path), "MAILFLOW_SMTP__MODE": "relay", "MAILFLOW_SMTP__HOST": "127.0.0.1",
           "MAILFLOW_SMTP__PORT": str(sink.port), "MAILFLOW_SECURITY__SECRET_KEY": "crash-test-secret-key-42",
           "MAILFLOW_HTTP__BASE_URL": "https://hep.twport.com.tw",
           "MAILFLOW_SCHEDULE__DISPATCH_BATCH": str(BATCH), "MAILFLOW_SCHEDULE__LEASE_SECONDS": "3"}
    first = Daemon(env, tmp_path / "first.log")
    daemons.append(first)
    first.start()
    wait_until(lambda: len(sink.received) >= 300, 120, "dispatch to be under way")
    assert first.signal(signal.SIGKILL) == -signal.SIGKILL
    at_kill = len(sink.received)
    assert at_kill < N_MAILS, "the kill came too late to test anything"

    second = Daemon({**env, "MAILFLOW_HTTP__PORT": str(free_port())}, tmp_path / "second.log")
    daemons.append(second)
    second.start()

    def unfinished() -> int:
        with db.session() as session:
            return session.scalar(select(func.count()).select_from(OutboxMessage)
                                  .where(OutboxMessage.status.not_in(states.FINAL))) or 0

    wait_until(lambda: unfinished() == 0, 180, "every mail to reach a final state")
    assert second.signal(signal.SIGTERM) == 0

    parser = BytesHeaderParser(policy=default)
    seen = Counter(str(parser.parsebytes(r.raw)["message-id"]) for r in sink.received)
    assert set(seen) == expected  # every mail delivered, nothing foreign
    duplicates = sum(seen.values()) - len(seen)
    assert duplicates <= BATCH  # at most the batch in flight at the kill
    with db.session() as session:
        statuses = dict(session.execute(select(OutboxMessage.status, func.count())
                                        .group_by(OutboxMessage.status)).tuples().all())
    assert statuses == {"sent": N_MAILS}
    db.dispose()
    print(f"killed after {at_kill} deliveries; {duplicates} duplicates")
