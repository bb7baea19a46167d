"""The periodic sweep (unverified > 3 days, failed mails), the SVG chart, and the zh-TW reason sentences."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date, timedelta

from sqlalchemy import select

from mailflow.context import AppContext
from mailflow.inbound.bounce.reasons import known_reasons
from mailflow.models import OutboxStatus, SupportItem, SupportKind
from mailflow.support import chart, queries, unverified
from mailflow.support.reasons_zh import REASON_SENTENCES, reason_sentence
from mailflow.timeutil import now, taipei
from tests.factories import ago, make_applicant, make_mail


def items(ctx: AppContext, kind: str) -> list[SupportItem]:
    with ctx.db.session() as session:
        return list(session.scalars(select(SupportItem).where(SupportItem.kind == kind)))


def test_approved_but_unverified_for_more_than_three_days_opens_one_item(ctx: AppContext) -> None:
    with ctx.db.session() as session:
        late, _ = make_applicant(session, decided_at=ago(days=4))
        make_mail(session, late, "account-approved", sent_at=ago(days=4))
        make_applicant(
            session, account="fresh1234", email="fresh@example.com", ubn="22099131", decided_at=ago(days=1)
        )
        verified, _ = make_applicant(
            session, account="done1234", email="done@example.com", ubn="12345675", decided_at=ago(days=5)
        )
        verified.email_verified_at, verified.email_verified_address = ago(days=4), "done@example.com"
    first = unverified.sweep(ctx)
    assert first.unverified == 1
    assert unverified.sweep(ctx).unverified == 0  # running again opens nothing new
    (item,) = items(ctx, SupportKind.UNVERIFIED)
    assert item.account_id == late.id and item.outbox_id is not None
    # Support re-sends the link: nothing reopens until that new mail is 3 days old too.
    with ctx.db.session() as session:
        found = session.get(SupportItem, item.id)
        assert found is not None
        found.resolved_at = now()
        make_mail(session, late, "account-approved", sent_at=ago(hours=1))
    assert unverified.sweep(ctx).unverified == 0
    later = unverified.sweep_session  # the same sweep, run four days from now
    with ctx.db.session() as session:
        assert later(session, now() + timedelta(days=4)).unverified == 2  # late again, and fresh1234 by then


def test_a_permanently_failed_mail_opens_one_item(ctx: AppContext) -> None:
    with ctx.db.session() as session:
        acc, _ = make_applicant(session)
        failed = make_mail(session, acc, "account-approved", status=OutboxStatus.FAILED)
        failed.last_reply = "554 5.7.1 relay refused"
        make_mail(session, acc, "registration-received")
    assert unverified.sweep(ctx).mail_failed == 1
    assert unverified.sweep(ctx).mail_failed == 0
    (item,) = items(ctx, SupportKind.MAIL_FAILED)
    assert item.outbox_id == failed.id and "relay refused" in item.diagnostic


def test_the_chart_is_a_valid_labelled_svg_with_a_point_per_day(ctx: AppContext) -> None:
    with ctx.db.session() as session:
        acc, _ = make_applicant(session)
        for hours in (1, 2, 30):
            make_mail(session, acc, "registration-received", sent_at=ago(hours=hours))
        days = queries.daily_activity(session, taipei(now()).date(), 30)
    assert len(days) == 30 and sum(d.sent for d in days) == 3
    svg = chart.render_activity_svg(days)
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg" and "寄出 3 封" in root.attrib["aria-label"]
    assert len(root.findall(f"{ns}polyline")) == 3
    assert len(root.findall(f"{ns}circle")) == 90
    assert "http" not in svg.replace("http://www.w3.org/2000/svg", "")  # nothing fetched from elsewhere
    empty = ET.fromstring(chart.render_activity_svg([]))
    assert empty.findall(f"{ns}polyline") == []


def test_axis_tops_are_round_numbers() -> None:
    assert [chart.nice_ceiling(v) for v in (0, 3, 5, 9, 21, 130, 4001)] == [4, 4, 8, 20, 40, 200, 8000]


def test_every_reason_the_bounce_parser_can_give_has_a_zh_tw_sentence() -> None:
    produced = known_reasons()
    assert produced - set(REASON_SENTENCES) == set()
    assert reason_sentence("userunknown") == "收件人信箱不存在"
    assert reason_sentence("MailboxFull") == "收件人信箱已滿"
    assert reason_sentence("hostunknown") == "收件人網域不存在"
    assert reason_sentence("expired") == "多次重試後仍無法送達"
    assert reason_sentence("no-such-reason") == reason_sentence("") == "無法判斷退信原因"


def test_a_date_filter_uses_taipei_days() -> None:
    start = queries.day_start_utc(date(2025, 3, 10))
    assert start.isoformat() == "2025-03-09T16:00:00+00:00"
