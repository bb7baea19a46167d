"""What operators do with the Notifications API: the webhook commands, and retention of its records."""

from __future__ import annotations

import contextlib
import io
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from mailflow.cli import main
from mailflow.context import AppContext
from mailflow.models import ApiKeyUse, Event, Notification, OutboxMessage, OutboxStatus, WebhookSubscriber
from mailflow.notify.events import emit_event
from mailflow.ops import housekeeping
from mailflow.timeutil import now
from tests.factories import verified_account
from tests.notify.conftest import Live, issue_key, pass_issued


def run(ctx: AppContext, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MAILFLOW_DATABASE__URL", ctx.settings.database.url)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse refusing the arguments
                code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def test_webhook_add_list_disable_enable_remove(ctx: AppContext) -> None:
    code, secret, said = run(ctx, "webhook", "add", "https://pass.example.tw/hooks", "--event",
                             "account.verified", "application.approved", "--event", "binding.ended")
    assert code == 0 and secret.strip().startswith("whsec_") and "shown only now" in said
    with ctx.db.session() as session:
        row = session.scalars(select(WebhookSubscriber)).one()
        assert row.event_types == ["application.approved", "account.verified", "binding.ended"]
        assert row.secret == secret.strip()
    assert run(ctx, "webhook", "add", "ftp://x", "--event", "account.verified")[0] == 2
    assert run(ctx, "webhook", "add", "https://x.tw", "--event", "account.deleted")[0] == 2
    assert run(ctx, "webhook", "add", "https://x.tw")[0] == 2  # --event is required
    listed = run(ctx, "webhook", "list")[1]
    assert "https://pass.example.tw/hooks" in listed and "enabled" in listed and secret.strip() not in listed
    assert "last success: never; last failure: never" in listed
    assert run(ctx, "webhook", "disable", str(row.id))[0] == 0
    assert "DISABLED" in run(ctx, "webhook", "list")[1]
    assert run(ctx, "webhook", "enable", str(row.id))[0] == 0
    assert run(ctx, "webhook", "list", "--json")[1].count('"enabled": true') == 1
    assert run(ctx, "webhook", "remove", str(row.id))[0] == 0
    assert run(ctx, "webhook", "remove", str(row.id))[0] == 1
    assert run(ctx, "webhook", "list")[1].strip() == "no webhook subscribers"


def test_retention_takes_old_api_records_and_a_notification_goes_with_its_mail(ctx: AppContext,
                                                                              live: Live) -> None:
    verified_account(ctx)
    with live.client(issue_key(ctx)) as api:
        old, young = (api.post("/api/v1/notifications", json=pass_issued(account="example1234")).json()["id"]
                      for _ in range(2))
    with ctx.db.session() as session:
        emit_event(session, "account.verified", None, {"account": "example1234"})
        emit_event(session, "account.verified", None, {"account": "example1234"})
    long_ago = now() - timedelta(days=ctx.settings.retention.mail_days + 1)
    with ctx.db.session() as session:
        old_mail = session.get(Notification, old).outbox_id  # type: ignore[union-attr]
        session.execute(update(OutboxMessage).where(OutboxMessage.id == old_mail)
                        .values(status=OutboxStatus.SENT, created_at=long_ago))
        session.execute(update(Event).where(Event.id == 1).values(created_at=long_ago))
        session.execute(update(ApiKeyUse).where(ApiKeyUse.id == 1).values(at=long_ago))
    report = housekeeping.run(ctx)
    assert report.outbox_deleted == 1 and report.api_records_deleted == 2
    with ctx.db.session() as session:
        assert list(session.scalars(select(Notification.id))) == [young]
        assert session.scalar(select(func.count()).select_from(Event)) == 1
        assert session.scalar(select(func.count()).select_from(ApiKeyUse)) == 1
    with live.client(issue_key(ctx, "reader")) as api:
        assert api.get(f"/api/v1/notifications/{old}").status_code == 404
        assert api.get(f"/api/v1/notifications/{young}").json()["status"] == "queued"
