"""The daily digest: yesterday's counts, today's open items, one copy a day however many workers fire."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from sqlalchemy import select

from mailflow.cli import main
from mailflow.config import Settings
from mailflow.context import AppContext
from mailflow.models import (
    BounceRecipient,
    InboundMessage,
    OutboxEvent,
    OutboxMessage,
    OutboxStatus,
    SupportKind,
)
from mailflow.support import digest
from mailflow.timeutil import TAIPEI
from tests.factories import make_applicant, make_bounce_item, make_item, make_mail

DAY = date(2025, 3, 10)  # the digest's morning; counts are of 2025-03-09 (Taipei)


def at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=TAIPEI)


def seed_yesterday(ctx: AppContext) -> None:
    yesterday = DAY - timedelta(days=1)
    with ctx.db.session() as session:
        acc, app = make_applicant(session)
        app.submitted_at = at(yesterday, 0)  # 00:00 Taipei is still yesterday 16:00 UTC the day before
        make_mail(session, acc, "registration-received", sent_at=at(yesterday, 9))
        mail = make_mail(session, acc, "account-approved", sent_at=at(yesterday, 23))
        make_mail(session, acc, "document-approved", sent_at=at(DAY, 0))  # today: not counted
        failed = make_mail(session, acc, "verify-reminder", status=OutboxStatus.FAILED)
        session.add(
            OutboxEvent(outbox_id=failed.id, at=at(yesterday, 12), from_status="retry", to_status="failed")
        )
        make_bounce_item(session, acc, app, mail, created_at=at(yesterday, 10))
        soft = InboundMessage(
            source="smtp", sha256="s" * 64, size=1, kind="bounce", received_at=at(yesterday, 11)
        )
        session.add(soft)
        session.flush()
        session.add(
            BounceRecipient(
                inbound_id=soft.id, address=acc.email, action="delayed", hard=False, reason="mailboxfull"
            )
        )
        for kind, n in (("reply", 2), ("complaint", 1)):
            for i in range(n):
                session.add(
                    InboundMessage(
                        source="imap",
                        sha256=f"{kind}{i}".ljust(64, "0"),
                        size=1,
                        kind=kind,
                        received_at=at(yesterday, 14),
                    )
                )
        make_item(session, SupportKind.REPLY, account_id=acc.id, address=acc.email)
        make_item(session, SupportKind.COMPLAINT, address="done@example.com", resolved=True)


def test_the_digest_counts_yesterday_in_taipei_and_lists_open_items(ctx: AppContext) -> None:
    seed_yesterday(ctx)
    with ctx.db.session() as session:
        content = digest.build_digest(session, ctx.settings, DAY)
    assert content["day"] == "2025-03-10" and content["counts_day"] == "2025-03-09"
    assert content["counts"] == {
        "sent": 2,
        "failed": 1,
        "bounced_hard": 1,
        "bounced_soft": 1,
        "complaints": 1,
        "replies": 2,
        "new_applications": 1,
        "open_items": 2,
    }
    kinds = [item["kind_title"] for item in content["items"]]
    assert sorted(kinds) == sorted(["永久退信", "申請人回信"])
    bounce = next(item for item in content["items"] if item["kind"] == "hard_bounce")
    assert (
        bounce["reason_text"] == "收件人信箱不存在"
        and bounce["ubn"] == "04595257"
        and bounce["name"] == "王小明"
    )


def test_two_workers_at_eight_queue_one_digest(db_url: str, settings: Settings) -> None:
    first, second = AppContext.from_settings(settings), AppContext.from_settings(settings)
    first.worker_id, second.worker_id = "host-a:1", "host-b:2"
    try:
        assert digest.run_scheduled(first, DAY) is not None
        assert digest.run_scheduled(second, DAY) is None
        assert digest.run_scheduled(first, DAY) is None
        with first.db.session() as session:
            rows = session.scalars(
                select(OutboxMessage).where(OutboxMessage.template == "support-digest")
            ).all()
            assert len(rows) == 1 and rows[0].to_address == settings.mail.support_address
            assert rows[0].context["day"] == DAY.isoformat()
        assert (
            digest.run_scheduled(second, DAY + timedelta(days=1)) is not None
        )  # the next morning: a new one
    finally:
        first.db.dispose()
        second.db.dispose()


def digests(ctx: AppContext) -> list[str]:
    with ctx.db.session() as session:
        rows = session.scalars(select(OutboxMessage).where(OutboxMessage.template == "support-digest")
                               .order_by(OutboxMessage.id))
        return [row.context["day"] for row in rows]


def test_a_digest_that_failed_to_queue_leaves_its_day_unclaimed_and_is_caught_up(
        ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("the database went away while the digest was built")

    with monkeypatch.context() as patched:
        patched.setattr(digest, "build_digest", broken)
        with pytest.raises(RuntimeError):
            digest.run_scheduled(ctx, DAY)
    assert digests(ctx) == []
    # Before 08:00 nothing is due; after it, the missed day is queued once, however often the job ticks.
    assert digest.catch_up(ctx, at(DAY, 7)) is None
    assert digest.catch_up(ctx, at(DAY, 9)) is not None
    assert digest.catch_up(ctx, at(DAY, 10)) is None
    assert digests(ctx) == [DAY.isoformat()]


def test_catch_up_follows_the_configured_schedule(ctx: AppContext) -> None:
    # DAY, 2025-03-10, is a Monday
    ctx.settings = ctx.settings.updated(schedule={"digest_cron": "30 9 * * sat"})
    assert digest.due_today("30 9 * * sat", "Asia/Taipei", at(DAY, 12)) is None
    assert digest.catch_up(ctx, at(DAY, 12)) is None
    saturday = DAY + timedelta(days=5)
    assert digest.due_today("30 9 * * sat", "Asia/Taipei", at(saturday, 12)) == \
        datetime.combine(saturday, time(9, 30), tzinfo=TAIPEI)
    assert digest.catch_up(ctx, at(saturday, 9)) is None
    assert digest.catch_up(ctx, at(saturday, 10)) is not None
    assert digests(ctx) == [saturday.isoformat()]


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILFLOW_DATABASE__URL", settings.database.url)
    monkeypatch.setenv("MAILFLOW_SMTP__MODE", "capture")


def test_the_command_prints_the_digest_and_queues_it_with_send(
    ctx: AppContext, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    seed_yesterday(ctx)
    assert main(["support", "digest", "--day", "2025-03-10"]) == 0
    printed = capsys.readouterr().out
    for expected in ("客服每日摘要 2025-03-10", "寄出郵件", "永久退信", "wang1234", "收件人信箱不存在"):
        assert expected in printed, expected
    with ctx.db.session() as session:
        assert (
            session.scalars(select(OutboxMessage).where(OutboxMessage.template == "support-digest")).all()
            == []
        )
    assert main(["support", "digest", "--send", "--day", "2025-03-10"]) == 0
    assert "queued as outbox" in capsys.readouterr().out
    with ctx.db.session() as session:
        assert (
            len(
                session.scalars(select(OutboxMessage).where(OutboxMessage.template == "support-digest")).all()
            )
            == 1
        )


def test_the_command_refuses_a_bad_day(cli_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["support", "digest", "--day", "yesterday"])
    assert stopped.value.code == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err


def test_the_digest_mail_shows_the_counts_and_the_items_table(ctx: AppContext) -> None:
    from mailflow.mail.render import render_parts

    seed_yesterday(ctx)
    with ctx.db.session() as session:
        content = digest.build_digest(session, ctx.settings, DAY)
    rendered = render_parts(ctx.settings, "support-digest", content)
    for part in (rendered.text, rendered.html):
        for expected in (
            "114年3月10日",  # staff read 民國 dates, in the digest as on /support
            "統計日:114年3月9日",
            "寄出郵件",
            "永久退信",
            "王小明",
            "04595257",
            "0912345678",
            "收件人信箱不存在",
            "/support",
        ):
            assert expected in part, expected
    assert "<th" in rendered.html and "{{" not in rendered.text
    assert rendered.subject == "通行證系統客服每日摘要 114年3月10日"
    assert "民國114年3月9日" in rendered.text  # the items' times too
