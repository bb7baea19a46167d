"""The suppression list, the soft-bounce count and support items without duplicates."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mailflow.context import AppContext
from mailflow.mail.outbox import enqueue
from mailflow.mail.suppression import lift, record_delivery, record_soft_bounce, suppress
from mailflow.models import OutboxMessage, OutboxStatus, SupportItem, SupportKind, Suppression
from mailflow.support.items import open_item
from mailflow.timeutil import now
from tests.factories import add_applicant
from tests.inbound.test_intake_helpers import sent_mail, suppressed


def test_suppress_once_lift_keeps_history_and_a_new_suppression_is_a_new_row(ctx: AppContext) -> None:
    with ctx.db.session() as session:
        first = suppress(session, " Wang@Example.com ", "hard_bounce", "5.1.1")
        assert suppress(session, "wang@example.com", "complaint", None).id == first.id
    with ctx.db.session() as session:
        assert lift(session, "WANG@example.com", "staff:amy") == 1
        assert not suppressed(session, "wang@example.com")
        assert lift(session, "wang@example.com", "staff:amy") == 0
        suppress(session, "wang@example.com", "complaint", None)
    with ctx.db.session() as session:
        rows = session.execute(select(Suppression).order_by(Suppression.id)).scalars().all()
        assert [(r.reason, r.lifted_by) for r in rows] == [("hard_bounce", "staff:amy"), ("complaint", None)]
        assert rows[0].lifted_at is not None


def test_suppress_turns_waiting_mail_suppressed_but_leaves_sent_and_other_addresses(ctx: AppContext) -> None:
    who = add_applicant(ctx)
    sent = sent_mail(ctx, who)
    queued = sent_mail(ctx, who, "document-approved", sent=False)
    other = sent_mail(ctx, who, "verify-reminder", to="someone@else.example", sent=False)
    with ctx.db.session() as session:
        retry = session.get(OutboxMessage, queued.id)
        assert retry is not None
        retry.status = OutboxStatus.RETRY
    with ctx.db.session() as session:
        suppress(session, who.email, "hard_bounce", "test")
    with ctx.db.session() as session:
        status = {m.id: m.status for m in session.execute(select(OutboxMessage)).scalars()}
    assert status == {sent.id: OutboxStatus.SENT, queued.id: OutboxStatus.SUPPRESSED,
                      other.id: OutboxStatus.QUEUED}
    with ctx.db.session() as session:  # and a new mail to it is born suppressed (outbox.enqueue)
        mail = enqueue(session, "verify-reminder", who.email, message_id_domain="twport.com.tw")
        assert mail.status == OutboxStatus.SUPPRESSED


def test_soft_bounce_count_and_reset(ctx: AppContext) -> None:
    with ctx.db.session() as session:
        assert [record_soft_bounce(session, "a@example.com") for _ in range(3)] == [1, 2, 3]
        assert record_soft_bounce(session, "b@example.com") == 1
    with ctx.db.session() as session:
        record_delivery(session, "A@example.com")
        assert record_soft_bounce(session, "a@example.com") == 1
        record_delivery(session, "never-bounced@example.com")  # no row yet: fine


def test_lift_starts_the_soft_count_again(ctx: AppContext) -> None:
    with ctx.db.session() as session:
        for _ in range(5):
            record_soft_bounce(session, "a@example.com")
        suppress(session, "a@example.com", "soft_bounces", None)
        lift(session, "a@example.com", "staff:amy")
        assert record_soft_bounce(session, "a@example.com") == 1


def test_suppress_refuses_an_empty_address(ctx: AppContext) -> None:
    with ctx.db.session() as session, pytest.raises(ValueError):
        suppress(session, "  ", "manual", None)


def test_open_item_has_no_duplicate_open_item_per_kind_account_and_mail(ctx: AppContext) -> None:
    who = add_applicant(ctx)
    mail = sent_mail(ctx, who)
    with ctx.db.session() as session:
        first = open_item(session, SupportKind.HARD_BOUNCE, account_id=who.account_id, outbox_id=mail.id,
                          address=who.email, reason="userunknown")
        same = open_item(session, SupportKind.HARD_BOUNCE, account_id=who.account_id, outbox_id=mail.id)
        other_kind = open_item(session, SupportKind.COMPLAINT, account_id=who.account_id, outbox_id=mail.id)
        no_mail = open_item(session, SupportKind.HARD_BOUNCE, account_id=who.account_id)
        assert same.id == first.id and len({first.id, other_kind.id, no_mail.id}) == 3
        first.resolved_at = now()
        reopened = open_item(session, SupportKind.HARD_BOUNCE, account_id=who.account_id, outbox_id=mail.id)
        assert reopened.id != first.id
        a = open_item(session, SupportKind.REPLY, address="x@example.com")
        b = open_item(session, SupportKind.REPLY, address="y@example.com")
        assert a.id != b.id and open_item(session, SupportKind.REPLY, address="x@example.com").id == a.id
        assert session.execute(select(SupportItem)).scalars().all().__len__() == 6


def test_open_item_refuses_unknown_kinds_and_fields(ctx: AppContext) -> None:
    with ctx.db.session() as session:
        with pytest.raises(ValueError):
            open_item(session, "party")
        with pytest.raises(TypeError):
            open_item(session, SupportKind.REPLY, colour="red")
        item = open_item(session, SupportKind.REPLY, reason="r" * 100, address="a@example.com")
        assert len(item.reason) == 40
