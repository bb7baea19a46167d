"""Dispatch's pipelined SMTP (RFC 2920) against Postfix's own server code: smtp-sink (Debian package
postfix) offers PIPELINING like a Postfix relay and writes each mail it takes to a file, so every byte that
arrived can be compared with what was sent."""

from __future__ import annotations

import email
import os
import subprocess
import threading
from collections.abc import Iterator
from email.policy import default
from pathlib import Path

import pytest
from sqlalchemy import select

from mailflow.context import AppContext
from mailflow.mail.dispatch import run_dispatch
from mailflow.mail.relay import SmtpLink
from mailflow.mail.render import sample_context
from mailflow.models import OutboxMessage, OutboxStatus
from tests.mail.helpers import queue_mail
from tests.peers import free_port, greets, require_program, wait_until

SMTP_SINK = "/usr/sbin/smtp-sink"
MAILS = 30


@pytest.fixture
def smtp_sink(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    require_program(SMTP_SINK, "postfix")
    dumps = tmp_path / "sink"
    dumps.mkdir()
    port = free_port()
    # -u: as root smtp-sink must be told whose rights to keep; -d: one file per mail taken.
    user = ["-u", "root"] if os.geteuid() == 0 else []
    proc = subprocess.Popen([SMTP_SINK, *user, "-d", f"{dumps}/%M.", f"127.0.0.1:{port}", "64"])
    try:
        wait_until(lambda: greets(port, b"220 "), 10, "smtp-sink to greet")
        yield port, dumps
    finally:
        proc.terminate()
        proc.wait(10)


def test_pipelined_dispatch_to_postfix_smtp_sink(relay_ctx: AppContext, smtp_sink: tuple[int, Path]) -> None:
    port, dumps = smtp_sink
    relay_ctx.settings = relay_ctx.settings.updated(smtp={"port": port})
    link = SmtpLink(relay_ctx.settings, relay_ctx.smtp_port())
    assert link.connect() is None and link.pipelining  # what a Postfix relay offers
    link.close()

    sample = sample_context("registration-received", relay_ctx.settings)
    names = [f"王小明{i}" for i in range(MAILS)]
    ids = [queue_mail(relay_ctx, f"user{i}@example.com", name=name, context={**sample, "name": name})
           for i, name in enumerate(names)]
    report = run_dispatch(relay_ctx, threading.Event())
    assert report.results == {"sent": MAILS}
    with relay_ctx.db.session() as session:
        found = session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(ids)))
        rows = {r.to_address: r for r in found}
    assert all(r.status == OutboxStatus.SENT for r in rows.values())

    wait_until(lambda: len(list(dumps.iterdir())) == MAILS, 10, f"{MAILS} mails in smtp-sink's files")
    for dump in dumps.iterdir():
        message = email.message_from_bytes(dump.read_bytes(), policy=default)
        to = str(message["X-Rcpt-Args"]).strip("<>")
        row = rows.pop(to)
        assert message["Message-ID"] == row.message_id and message["To"].addresses[0].addr_spec == to
        text = message.get_body(("plain",))
        assert text is not None and str(text.get_content()).startswith("您好:")
        assert f"姓名:{row.to_name}" in str(text.get_content())
    assert rows == {}  # each mail exactly once
