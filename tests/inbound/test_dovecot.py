"""The IMAP poller against a real, throw-away Dovecot: mail placed in the mailbox with APPEND is stored,
routed to its applicant and moved to mailflow/processed or mailflow/quarantine; a restart re-reads
nothing; a UIDVALIDITY change re-scans without recording anything twice."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient
from sqlalchemy import select

from mailflow import leases
from mailflow.context import AppContext
from mailflow.inbound import consequences, imap
from mailflow.models import Account, ImapCursor, InboundStatus, SupportKind
from tests.factories import add_applicant
from tests.inbound.dovecot import DovecotServer, dovecot  # noqa: F401  (the fixture)
from tests.inbound.test_intake_helpers import dsn, inbound_rows, items, reply, sent_mail, suppressed
from tests.peers import wait_until

pytestmark = pytest.mark.dovecot

BOUNCE_LIKE = (b"From: MAILER-DAEMON@mx.example.net\r\nSubject: Undelivered Mail Returned to Sender\r\n\r\n"
               b"I am sorry to have to inform you that your message could not be delivered.\r\n")


@pytest.fixture
def imap_ctx(ctx: AppContext, dovecot: DovecotServer) -> AppContext:  # noqa: F811
    use_imap(ctx, dovecot)
    return ctx


def use_imap(ctx: AppContext, server: DovecotServer, folder: str = "INBOX") -> None:
    ctx.settings = ctx.settings.updated(inbound={
        "imap_host": server.host, "imap_port": server.port, "imap_ssl": False, "imap_user": server.user,
        "imap_password": server.password, "imap_folder": folder})


@pytest.fixture
def mailbox(dovecot: DovecotServer) -> Iterator[IMAPClient]:  # noqa: F811
    client = IMAPClient(dovecot.host, dovecot.port, ssl=False, timeout=30)
    client.login(dovecot.user, dovecot.password)
    yield client
    client.logout()


def count(client: IMAPClient, folder: str) -> int:
    return int(client.folder_status(folder, [b"MESSAGES"])[b"MESSAGES"])


def test_bounce_in_the_mailbox_flags_the_applicant_and_a_restart_rereads_nothing(
        imap_ctx: AppContext, mailbox: IMAPClient) -> None:
    ctx = imap_ctx
    who = add_applicant(ctx)
    mail = sent_mail(ctx, who)
    mailbox.append("INBOX", dsn(ctx.settings, mail))
    result = imap.poll(ctx)
    assert result is not None and (result.seen, result.stored) == (1, 1)
    with ctx.db.session() as session:
        [row] = inbound_rows(session)
        assert (row.source, row.status, row.outbox_id) == ("imap", InboundStatus.PROCESSED, mail.id)
        assert suppressed(session, who.email)
        account = session.get(Account, who.account_id)
        assert account is not None and account.email_undeliverable
        assert [(i.kind, i.account_id) for i in items(session)] == [(SupportKind.HARD_BOUNCE, who.account_id)]
        cursor = session.execute(select(ImapCursor)).scalar_one()
        assert cursor.last_uid == 1
    assert count(mailbox, "INBOX") == 0 and count(mailbox, "mailflow/processed") == 1
    restarted = AppContext.from_settings(ctx.settings)
    try:
        again = imap.poll(restarted)
    finally:
        restarted.db.dispose()
    assert again is not None and again.seen == 0
    with ctx.db.session() as session:
        assert len(inbound_rows(session)) == 1 and len(items(session)) == 1


def test_cursor_skips_what_was_handled_even_when_it_could_not_be_moved(imap_ctx: AppContext,
                                                                       mailbox: IMAPClient) -> None:
    ctx = imap_ctx
    who = add_applicant(ctx)
    mailbox.append("INBOX", reply(who.email, "第一封"))
    imap.poll(ctx)
    # The handled mail is put back where it was, as if the move had never happened: a new UID, so it is
    # read again, and the store recognises it (same Message-ID and bytes) — recorded once.
    [uid] = mailbox.select_folder("mailflow/processed") and mailbox.search("ALL")
    raw = mailbox.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"]
    mailbox.append("INBOX", raw)
    result = imap.poll(ctx)
    assert result is not None and (result.seen, result.stored) == (1, 0)
    with ctx.db.session() as session:
        assert len(inbound_rows(session)) == 1 and len(items(session)) == 1


def test_a_broken_message_is_quarantined_and_the_next_one_still_processed(imap_ctx: AppContext,
                                                                          mailbox: IMAPClient) -> None:
    ctx = imap_ctx
    who = add_applicant(ctx)
    mail = sent_mail(ctx, who)
    mailbox.append("INBOX", BOUNCE_LIKE)
    mailbox.append("INBOX", dsn(ctx.settings, mail))
    result = imap.poll(ctx)
    assert result is not None
    assert result.statuses == {InboundStatus.QUARANTINED: 1, InboundStatus.PROCESSED: 1}
    with ctx.db.session() as session:
        first, second = inbound_rows(session)
        assert first.status == InboundStatus.QUARANTINED and first.quarantine_reason
        assert second.status == InboundStatus.PROCESSED and suppressed(session, who.email)
    assert count(mailbox, "mailflow/quarantine") == 1 and count(mailbox, "mailflow/processed") == 1


def test_uidvalidity_change_rescans_without_recording_twice(ctx: AppContext, dovecot: DovecotServer,  # noqa: F811
                                                            mailbox: IMAPClient) -> None:
    use_imap(ctx, dovecot, folder="bounces")
    who = add_applicant(ctx)
    mail = sent_mail(ctx, who)
    bounce = dsn(ctx.settings, mail)
    mailbox.create_folder("bounces")
    mailbox.append("bounces", bounce)
    imap.poll(ctx)
    mailbox.delete_folder("bounces")  # the folder is recreated: a new UIDVALIDITY, UIDs from 1 again
    mailbox.create_folder("bounces")
    mailbox.append("bounces", reply(who.email, "新的一封"))  # UID 1 of the new folder
    mailbox.append("bounces", bounce)  # the same bounce again
    result = imap.poll(ctx)
    assert result is not None and (result.seen, result.stored) == (2, 1)
    with ctx.db.session() as session:
        assert [r.kind for r in inbound_rows(session)] == ["bounce", "reply"]
        assert sorted(i.kind for i in items(session)) == [SupportKind.HARD_BOUNCE, SupportKind.REPLY]
    assert count(mailbox, "bounces") == 0


class Crash(BaseException):
    """The process dying (no `except Exception` catches it)."""


def test_a_crash_in_the_middle_of_a_batch_loses_nothing_and_acts_once(
        imap_ctx: AppContext, mailbox: IMAPClient, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = imap_ctx
    people = [add_applicant(ctx, account=f"crash{i:04d}", email=f"user{i}@example.com") for i in range(3)]
    for who in people:
        mailbox.append("INBOX", dsn(ctx.settings, sent_mail(ctx, who)))
    mailbox.append("INBOX", reply(people[0].email, "請問何時審核?"))
    real, calls = consequences.act, []

    def dies_on_the_third(*args: Any) -> None:
        calls.append(1)
        if len(calls) == 3:
            raise Crash
        real(*args)

    monkeypatch.setattr(consequences, "act", dies_on_the_third)
    with pytest.raises(Crash):
        imap.poll(ctx)
    with ctx.db.session() as session:  # every mail recorded, none acted on, none moved
        assert [r.status for r in inbound_rows(session)] == [InboundStatus.STORED] * 4
        assert items(session) == [] and not suppressed(session, people[0].email)
    assert count(mailbox, "INBOX") == 4
    monkeypatch.setattr(consequences, "act", real)
    result = imap.poll(ctx)  # the restarted poller
    assert result is not None and (result.seen, result.stored) == (4, 0)
    with ctx.db.session() as session:
        assert [r.status for r in inbound_rows(session)] == [InboundStatus.PROCESSED] * 4
        assert sorted(i.kind for i in items(session)) == sorted([SupportKind.HARD_BOUNCE] * 3
                                                                 + [SupportKind.REPLY])
        assert all(suppressed(session, who.email) for who in people)
    assert count(mailbox, "INBOX") == 0 and count(mailbox, "mailflow/processed") == 4


def test_copy_delete_expunge_when_move_is_not_used(imap_ctx: AppContext, mailbox: IMAPClient) -> None:
    mailbox.append("INBOX", b"Subject: x\r\n\r\nhello\r\n")
    folders = imap.ensure_folders(mailbox)
    mailbox.select_folder("INBOX")
    [uid] = mailbox.search("ALL")
    imap.move_messages(mailbox, [uid], folders.quarantine, use_move=False)
    assert count(mailbox, "INBOX") == 0 and count(mailbox, "mailflow/quarantine") == 1


def test_idle_loop_handles_mail_as_it_arrives_and_stops(imap_ctx: AppContext, mailbox: IMAPClient) -> None:
    ctx = imap_ctx
    who = add_applicant(ctx)
    stop = threading.Event()
    worker = threading.Thread(target=imap.run_idle_loop, args=(ctx, stop), daemon=True)
    worker.start()
    try:
        mailbox.append("INBOX", reply(who.email, "IDLE 收到了嗎"))
        def handled() -> bool:
            with ctx.db.session() as session:
                return bool(items(session))

        wait_until(handled, 60, "the appended reply to be handled")  # waiting for the event, not timing it
    finally:
        stop.set()
        worker.join(timeout=60)
    assert not worker.is_alive()
    with ctx.db.session() as session:
        assert [i.kind for i in items(session)] == [SupportKind.REPLY]


def test_idle_loop_survives_an_unreachable_server(ctx: AppContext) -> None:
    ctx.settings = ctx.settings.updated(inbound={"imap_host": "127.0.0.1", "imap_port": 1, "imap_ssl": False})
    stop = threading.Event()
    worker = threading.Thread(target=imap.run_idle_loop, args=(ctx, stop), daemon=True)
    worker.start()
    time.sleep(0.3)  # let it fail at least once
    assert worker.is_alive()
    stop.set()
    worker.join(timeout=30)
    assert not worker.is_alive()


def test_poll_without_imap_configured_does_nothing(ctx: AppContext) -> None:
    assert imap.poll(ctx) is None


# --- IDLE (RFC 2177) in the daemon's reader --------------------------------------------------------


def open_items(ctx: AppContext) -> list[str]:
    with ctx.db.session() as session:
        return [i.kind for i in items(session)]


@pytest.fixture
def watcher_ctx(imap_ctx: AppContext) -> AppContext:
    # An hour between polls: whatever is handled within the test's bound was announced by IDLE.
    imap_ctx.settings = imap_ctx.settings.updated(schedule={"imap_poll_seconds": 3600})
    return imap_ctx


@contextlib.contextmanager
def running(ctx: AppContext, **kwargs: float) -> Iterator[imap.MailboxWatcher]:
    watcher = imap.MailboxWatcher(ctx, **kwargs).start()
    try:
        yield watcher
    finally:
        watcher.stop()


def test_idle_turns_a_new_bounce_into_a_support_item_without_a_poll(watcher_ctx: AppContext,
                                                                     mailbox: IMAPClient) -> None:
    ctx = watcher_ctx
    who = add_applicant(ctx)
    mail = sent_mail(ctx, who)
    with running(ctx) as watcher:
        wait_until(lambda: watcher.status.idles >= 1, 30, "the reader to enter IDLE")
        mailbox.append("INBOX", dsn(ctx.settings, mail))
        wait_until(lambda: open_items(ctx) == [SupportKind.HARD_BOUNCE], 30, "the bounce's support item")
        assert (watcher.status.mode, watcher.status.sessions) == ("idle", 1)
    assert count(mailbox, "INBOX") == 0 and count(mailbox, "mailflow/processed") == 1


def test_idle_is_reissued_on_the_same_connection_and_still_hears_new_mail(watcher_ctx: AppContext,
                                                                          mailbox: IMAPClient) -> None:
    """The re-issue before the server's 29-minute cut-off, shrunk to half a second."""
    ctx = watcher_ctx
    who = add_applicant(ctx)
    with running(ctx, idle_seconds=0.5) as watcher:
        wait_until(lambda: watcher.status.idles >= 4, 30, "IDLE to be ended and issued again three times")
        mailbox.append("INBOX", reply(who.email, "重新 IDLE 之後"))
        wait_until(lambda: open_items(ctx) == [SupportKind.REPLY], 30, "the reply's support item")
        assert watcher.status.sessions == 1  # the same connection throughout


def test_the_reader_reconnects_after_the_server_restarts(watcher_ctx: AppContext,
                                                         dovecot: DovecotServer) -> None:  # noqa: F811
    ctx = watcher_ctx
    who = add_applicant(ctx)
    mail = sent_mail(ctx, who)
    with running(ctx) as watcher:
        wait_until(lambda: watcher.status.idles >= 1, 30, "the reader to enter IDLE")
        dovecot.restart()  # drops the reader's connection in the middle of its IDLE
        wait_until(lambda: watcher.status.sessions >= 2, 60, "the reader to reconnect")
        client = IMAPClient(dovecot.host, dovecot.port, ssl=False, timeout=30)
        client.login(dovecot.user, dovecot.password)
        try:
            client.append("INBOX", dsn(ctx.settings, mail))
            wait_until(lambda: open_items(ctx) == [SupportKind.HARD_BOUNCE], 30, "the bounce's item")
        finally:
            client.logout()


def test_without_idle_on_offer_the_reader_polls(ctx: AppContext) -> None:
    from tests.inbound.dovecot import dovecot_or_skip, start_dovecot

    dovecot_or_skip()
    # The capabilities Dovecot announces after login, with IDLE left out.
    server = start_dovecot("imap_capability = IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE "
                           "UIDPLUS MOVE NAMESPACE\n")
    try:
        use_imap(ctx, server)
        ctx.settings = ctx.settings.updated(schedule={"imap_poll_seconds": 0.3})
        who = add_applicant(ctx)
        with running(ctx) as watcher:
            wait_until(lambda: watcher.status.mode != "", 30, "the reader to connect")
            client = IMAPClient(server.host, server.port, ssl=False, timeout=30)
            client.login(server.user, server.password)
            try:
                assert not client.has_capability("IDLE")
                client.append("INBOX", reply(who.email, "沒有 IDLE 也收得到"))
            finally:
                client.logout()
            wait_until(lambda: open_items(ctx) == [SupportKind.REPLY], 30, "the polled reply's item")
            assert (watcher.status.mode, watcher.status.idles) == ("poll", 0)
    finally:
        server.stop()


def test_of_two_workers_one_reads_the_mailbox_and_the_other_takes_over(watcher_ctx: AppContext,
                                                                        mailbox: IMAPClient) -> None:
    ctx = watcher_ctx
    # the idle worker looks again every second
    ctx.settings = ctx.settings.updated(schedule={"lease_seconds": 3})
    other = AppContext(ctx.settings, ctx.db, worker_id="other-worker")
    who = add_applicant(ctx)
    first, second = imap.MailboxWatcher(ctx).start(), imap.MailboxWatcher(other).start()
    try:
        wait_until(lambda: first.status.idles + second.status.idles >= 1, 30, "one reader to IDLE")
        holder, waiting = (first, second) if first.status.sessions else (second, first)
        assert waiting.status.sessions == 0
        for n in range(5):
            mailbox.append("INBOX", reply(who.email, f"第 {n} 封"))
        wait_until(lambda: count(mailbox, "mailflow/processed") == 5, 30, "five replies handled")
        holder.stop()
        wait_until(lambda: waiting.status.idles >= 1, 30, "the other worker to take the mailbox over")
        mailbox.append("INBOX", reply(who.email, "接手之後"))
        wait_until(lambda: count(mailbox, "mailflow/processed") == 6, 30, "the reply after the take-over")
    finally:
        first.stop()
        second.stop()
    with ctx.db.session() as session:
        assert len(inbound_rows(session)) == 6  # each mail recorded once


@pytest.mark.once  # a daemon process: the SQLite pass is enough to check the wiring
def test_mailflow_run_reads_the_mailbox_as_mail_arrives(watcher_ctx: AppContext, mailbox: IMAPClient,
                                                        dovecot: DovecotServer, db_url: str,  # noqa: F811
                                                        tmp_path: Path) -> None:
    """The daemon wiring: a worker process takes the IMAP lease and turns a bounce into its item, with
    the poll interval an hour away (so IDLE it is), and stops cleanly."""
    from tests.scale.workers import SECRET_KEY, Worker, worker_env

    ctx = watcher_ctx
    # the worker's key signs and checks the bounce tag
    ctx.settings = ctx.settings.updated(security={"secret_key": SECRET_KEY})
    who = add_applicant(ctx)
    mail = sent_mail(ctx, who)
    env = worker_env(db_url, 0, tmp_path, smtp__mode="capture", inbound__imap_host=dovecot.host,
                     inbound__imap_port=dovecot.port, inbound__imap_ssl="false",
                     inbound__imap_user=dovecot.user, inbound__imap_password=dovecot.password,
                     schedule__imap_poll_seconds=3600)
    worker = Worker(env, tmp_path)
    try:
        wait_until(lambda: leases.holder_of(ctx.db, imap.MailboxWatcher.LEASE) is not None, 60,
                   "the worker to take the mailbox", context=worker.output)
        mailbox.append("INBOX", dsn(ctx.settings, mail))
        wait_until(lambda: open_items(ctx) == [SupportKind.HARD_BOUNCE], 60, "the bounce's item",
                   context=worker.output)
        assert worker.terminate() == 0
        assert leases.holder_of(ctx.db, imap.MailboxWatcher.LEASE) is None  # given up on the way out
    finally:
        worker.close()
    assert "IMAP mailbox" in worker.output()


def test_mail_that_arrived_just_before_idle_is_heard_at_once(dovecot: DovecotServer,  # noqa: F811
                                                             mailbox: IMAPClient) -> None:
    """A mail appended between the reader's last look and its IDLE: the server reports it as IDLE starts,
    often in the same packet as IDLE's '+ idling', which the IMAP library has then already read into its
    buffer. Waiting on the socket alone would sleep through it until the next IDLE renewal."""
    reader = IMAPClient(dovecot.host, dovecot.port, ssl=False, timeout=30)
    reader.login(dovecot.user, dovecot.password)
    try:
        for n in range(5):  # the packet split is the server's choice: several rounds
            reader.select_folder("INBOX")
            reader.noop()
            mailbox.append("INBOX", BOUNCE_LIKE + f"round {n}\r\n".encode())
            assert imap.wait_for_mail(reader, threading.Event(), 10.0), f"round {n}: missed"
    finally:
        reader.logout()
