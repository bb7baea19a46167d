"""Mails stored and processed in batches (one commit per batch): each mail is still recorded once and
acted on once, whoever else stores or processes the same mails at the same moment, and one mail that
cannot be processed is quarantined alone."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from mailflow.context import AppContext
from mailflow.inbound import consequences, route, store
from mailflow.inbound.store import Incoming, Writer, store_mail, store_mails
from mailflow.models import (
    AuditEvent,
    BounceRecipient,
    InboundMessage,
    InboundStatus,
    OutboxMessage,
    SupportKind,
)
from mailflow.models.base import utcnow
from tests.factories import Applicant, add_applicant
from tests.inbound.test_intake_helpers import dsn, inbound_rows, items, reply, sent_mail, suppressed

THREADS = 24


def applicants(ctx: AppContext, n: int) -> list[Applicant]:
    return [add_applicant(ctx, account=f"batch{i:04d}", email=f"user{i}@example.com") for i in range(n)]


def test_a_batch_is_stored_once_with_duplicates_inside_and_before(ctx: AppContext) -> None:
    who = add_applicant(ctx)
    first, second = reply(who.email, "第一封"), reply(who.email, "第二封")
    earlier = store_mail(ctx.db, first, "smtp", "earlier")
    stored = store_mails(ctx.db, [Incoming(raw, "imap") for raw in (first, second, second)])
    assert [s.new for s in stored] == [False, True, False]
    assert stored[0].id == earlier.id and stored[1].id == stored[2].id != earlier.id
    with ctx.db.session() as session:
        assert len(inbound_rows(session)) == 2


def row_values(ctx: AppContext) -> list[dict[str, Any]]:
    """Every column of every stored mail but its id, by SHA-256."""
    with ctx.db.engine.connect() as conn:
        rows = [dict(row._mapping) for row in conn.execute(select(InboundMessage.__table__))]
    return sorted(({k: v for k, v in row.items() if k != "id"} for row in rows), key=lambda r: r["sha256"])


def test_the_smtp_writer_stores_the_same_rows_as_store_mails(ctx: AppContext,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # The inbound SMTP server's Writer (PostgreSQL: its own INSERT in autocommit) against store_mails.
    who = add_applicant(ctx)
    mails = [Incoming(reply(who.email, f"第 {i} 封\x00"), "smtp", "smtp:192.0.2.1\x00", f"a{i}@example.net",
                      "reply@twport.com.tw,bounce+x@twport.com.tw") for i in range(3)]
    stored = store_mails(ctx.db, mails)
    expected = row_values(ctx)
    with ctx.db.engine.begin() as conn:
        conn.execute(InboundMessage.__table__.delete())
    if ctx.db.is_postgres:  # its own way, not store_mails's
        monkeypatch.setattr(store, "_store_values", None)
    writer = Writer(ctx.db)
    try:
        again = writer.store(mails[:1]) + writer.store(mails[1:])
    finally:
        writer.close()
    got = row_values(ctx)
    assert [s.new for s in stored + again] == [True] * 6
    for row in expected + got:
        received_at = row.pop("received_at")
        assert received_at.tzinfo is not None and abs((received_at - utcnow()).total_seconds()) < 60
    assert got == expected


def test_the_smtp_writer_finds_mails_recorded_before_and_twice_in_one_call(ctx: AppContext) -> None:
    who = add_applicant(ctx)
    first, second = reply(who.email, "第一封"), reply(who.email, "第二封")
    earlier = store_mail(ctx.db, first, "smtp", "earlier")
    writer = Writer(ctx.db)
    try:
        stored = writer.store([Incoming(raw, "smtp") for raw in (second, second, first)])
        assert [s.new for s in stored] == [True, False, False]
        assert stored[0].id == stored[1].id != earlier.id == stored[2].id
        assert [s.new for s in writer.store([Incoming(second, "smtp")])] == [False]  # still serving
        assert writer.store([Incoming(reply(who.email, "第三封"), "smtp")])[0].new
    finally:
        writer.close()
    with ctx.db.session() as session:
        assert len(inbound_rows(session)) == 3


@pytest.mark.postgres_only
def test_the_smtp_writer_stores_through_a_connection_the_server_dropped(ctx: AppContext) -> None:
    who = add_applicant(ctx)
    writer = Writer(ctx.db)
    try:
        assert writer.store([Incoming(reply(who.email, "一"), "smtp")])[0].new
        with ctx.db.engine.begin() as conn:  # as a server restart does
            conn.exec_driver_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        assert writer.store([Incoming(reply(who.email, "二"), "smtp")])[0].new
        assert writer.store([Incoming(reply(who.email, "三"), "smtp")])[0].new
    finally:
        writer.close()
    with ctx.db.session() as session:
        assert len(inbound_rows(session)) == 3


def test_many_intakes_storing_the_same_batch_at_once_record_each_mail_once(ctx: AppContext) -> None:
    who = add_applicant(ctx)
    mails = [Incoming(reply(who.email, f"第 {i} 封"), "smtp") for i in range(5)]
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(lambda _: store_mails(ctx.db, mails), range(THREADS)))
    assert sum(s.new for stored in results for s in stored) == len(mails)  # each new exactly once
    assert all([s.id for s in stored] == [s.id for s in results[0]] for stored in results)
    with ctx.db.session() as session:
        assert len(inbound_rows(session)) == len(mails)


def test_batches_and_single_mails_processing_the_same_mails_at_once_act_once(ctx: AppContext) -> None:
    people = applicants(ctx, 3)
    raws = [dsn(ctx.settings, sent_mail(ctx, who)) for who in people] + [reply(people[0].email, "請問")]
    stored = store_mails(ctx.db, [Incoming(raw, "smtp") for raw in raws])
    mails = [(s.id, raw) for s, raw in zip(stored, raws, strict=True)]

    def work(n: int) -> dict[int, str]:
        if n % 2:
            return route.process_batch(ctx, mails)
        return {s.id: route.process(ctx, s.id) for s in stored}

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(work, range(THREADS)))
    assert all(r == {s.id: InboundStatus.PROCESSED for s in stored} for r in results)
    with ctx.db.session() as session:
        assert session.scalar(select(func.count(BounceRecipient.id))) == 3
        assert sorted(i.kind for i in items(session)) == sorted([SupportKind.HARD_BOUNCE] * 3
                                                                 + [SupportKind.REPLY])
        opened = session.scalar(select(func.count(AuditEvent.id))
                                .where(AuditEvent.action == "support_item_opened"))
        assert opened == 4


def test_one_mail_that_fails_is_quarantined_alone_and_the_rest_of_its_batch_processed(
        ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = applicants(ctx, 2)
    bad, good = sent_mail(ctx, first), sent_mail(ctx, second)
    real = consequences.on_bounce

    def fails_for_one(session: Any, row: Any, analysis: Any, tagged: Any) -> None:
        real(session, row, analysis, tagged)
        if tagged is not None and tagged.id == bad.id:
            raise RuntimeError("disk on fire")

    monkeypatch.setitem(consequences.HANDLERS, "bounce", fails_for_one)
    raws = [dsn(ctx.settings, bad), dsn(ctx.settings, good), reply(second.email, "收到了嗎?")]
    stored = store_mails(ctx.db, [Incoming(raw, "smtp") for raw in raws])
    statuses = route.process_batch(ctx, [(s.id, raw) for s, raw in zip(stored, raws, strict=True)])
    assert [statuses[s.id] for s in stored] == [InboundStatus.QUARANTINED, InboundStatus.PROCESSED,
                                                InboundStatus.PROCESSED]
    with ctx.db.session() as session:
        row = session.get(InboundMessage, stored[0].id)
        assert row is not None and row.quarantine_reason and "disk on fire" in row.quarantine_reason
        assert not suppressed(session, first.email) and suppressed(session, second.email)
        assert sorted(i.kind for i in items(session)) == [SupportKind.HARD_BOUNCE, SupportKind.REPLY]


def test_process_pending_finishes_a_batch_left_stored_by_a_crash(ctx: AppContext) -> None:
    people = applicants(ctx, 3)
    raws = [dsn(ctx.settings, sent_mail(ctx, who)) for who in people]
    store_mails(ctx.db, [Incoming(raw, "imap") for raw in raws])  # ... and the process died here
    assert route.process_pending(ctx) == 3
    with ctx.db.session() as session:
        assert {r.status for r in inbound_rows(session)} == {InboundStatus.PROCESSED}
        assert len(items(session)) == 3 and all(suppressed(session, who.email) for who in people)
    assert route.process_pending(ctx) == 0


def test_a_batch_ties_each_mail_to_the_mail_it_answers(ctx: AppContext) -> None:
    """By tag, by quoted Message-ID, by In-Reply-To and, as a guess, by address and time — the same
    answers as one mail at a time, with the batch's look-ups made together."""
    tagged, quoted, replied, guessed = applicants(ctx, 4)
    by_tag, by_id, answered = sent_mail(ctx, tagged), sent_mail(ctx, quoted), sent_mail(ctx, replied)
    sent_mail(ctx, quoted, "document-approved")  # later mail to the same address: must not be chosen
    sent_mail(ctx, guessed)
    latest = sent_mail(ctx, guessed, "document-approved")
    stranger = OutboxMessage(id=10**9, to_address=guessed.email, message_id="<unknown@elsewhere.example>")
    raws = [dsn(ctx.settings, by_tag),
            dsn(ctx.settings, by_id, to="hep@twport.com.tw", return_path="hep@twport.com.tw"),
            reply(replied.email, "請問", in_reply_to=answered.message_id),
            dsn(ctx.settings, stranger, to="hep@twport.com.tw", return_path="x@elsewhere.example")]
    stored = store_mails(ctx.db, [Incoming(raw, "imap") for raw in raws])
    route.process_batch(ctx, [(s.id, raw) for s, raw in zip(stored, raws, strict=True)])
    with ctx.db.session() as session:
        assert [r.outbox_id for r in inbound_rows(session)] == [by_tag.id, by_id.id, answered.id, latest.id]
        assert suppressed(session, tagged.email) and suppressed(session, quoted.email)
        assert not suppressed(session, guessed.email)  # an address alone proves nothing


def test_a_mail_that_cannot_be_understood_is_quarantined_alone(ctx: AppContext,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    who = add_applicant(ctx)
    raws = [dsn(ctx.settings, sent_mail(ctx, who)), reply(who.email, "請問")]

    def no_dns(*args: Any, **kwargs: Any) -> None:
        raise TimeoutError("DNS away")

    monkeypatch.setattr(route.sender_auth, "judge", no_dns)  # replies only: their sender is judged
    stored = store_mails(ctx.db, [Incoming(raw, "smtp") for raw in raws])
    statuses = route.process_batch(ctx, [(s.id, raw) for s, raw in zip(stored, raws, strict=True)])
    assert [statuses[s.id] for s in stored] == [InboundStatus.PROCESSED, InboundStatus.QUARANTINED]
    with ctx.db.session() as session:
        bounce, words = inbound_rows(session)
        assert words.quarantine_reason is not None and "DNS away" in words.quarantine_reason
        assert bounce.status == InboundStatus.PROCESSED and suppressed(session, who.email)
        assert [i.kind for i in items(session)] == [SupportKind.HARD_BOUNCE]


def test_a_batch_the_database_fails_stays_stored_for_a_later_pass(ctx: AppContext,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    people = applicants(ctx, 2)
    raws = [dsn(ctx.settings, sent_mail(ctx, who)) for who in people]
    stored = store_mails(ctx.db, [Incoming(raw, "imap") for raw in raws])

    def database_away(*args: Any) -> None:
        raise OperationalError("COMMIT", {}, ConnectionError("server closed the connection"))

    with monkeypatch.context() as patched:
        patched.setattr(route, "_act_together", database_away)
        statuses = route.process_batch(ctx, [(s.id, raw) for s, raw in zip(stored, raws, strict=True)])
    assert set(statuses.values()) == {InboundStatus.STORED}  # not quarantined for the database's fault
    assert route.process_pending(ctx) == 2
    with ctx.db.session() as session:
        assert {r.status for r in inbound_rows(session)} == {InboundStatus.PROCESSED}
        assert len(items(session)) == 2
