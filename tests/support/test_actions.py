"""Customer service's actions below the web: email correction after a phone call, re-sending a mail,
lifting a suppression — each changes exactly what it should and leaves its audit event."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailflow.accounts.tokens import issue_token
from mailflow.config import Settings
from mailflow.context import AppContext
from mailflow.mail import suppression
from mailflow.models import (
    Account,
    ApplicationStatus,
    AuditEvent,
    OutboxMessage,
    OutboxStatus,
    TokenPurpose,
    VerificationToken,
)
from mailflow.support import actions
from tests.factories import csrf_of, make_applicant, make_bounce_item, make_mail, make_staff, sign_in


def audit_actions(session: Session, actor: str = "staff:chen") -> list[str]:
    return list(session.scalars(select(AuditEvent.action).where(AuditEvent.actor == actor)))


def outbox_to(session: Session, address: str) -> list[OutboxMessage]:
    return list(session.scalars(select(OutboxMessage).where(OutboxMessage.to_key == address.lower())))


def test_correcting_the_address_of_an_approved_unverified_applicant(ctx: AppContext) -> None:
    with ctx.db.session() as session:
        acc, app = make_applicant(session)
        acc.email_undeliverable = True
        _, old_token = issue_token(session, ctx.settings, acc, TokenPurpose.VERIFY_EMAIL, acc.email)
        make_bounce_item(session, acc, app, make_mail(session, acc))
        suppression.suppress(session, acc.email, "userunknown")
        result = actions.correct_email(session, ctx.settings, acc.id, " Wang.New@Example.com ", "chen")
        assert result.old_address == "wang@example.com" and result.voided == 1
        assert result.mail is not None and result.mail.template == "account-approved"
    with ctx.db.session() as session:
        fresh = session.get(Account, acc.id)
        assert fresh is not None
        assert fresh.email == "Wang.New@example.com" and fresh.email_key == "wang.new@example.com"
        assert fresh.email_undeliverable is False
        voided = session.get(VerificationToken, old_token.id)
        assert voided is not None and voided.voided_at is not None
        mails = outbox_to(session, "wang.new@example.com")
        assert [m.template for m in mails] == ["account-approved"] and mails[0].status == OutboxStatus.QUEUED
        token = session.get(VerificationToken, mails[0].token_id)
        assert (
            token is not None and token.address.lower() == "wang.new@example.com" and token.voided_at is None
        )
        assert "/verify/" in mails[0].context["verify_url"]
        # Not asked to: the old address stays suppressed.
        assert suppression.active_suppression(session, "wang@example.com") is not None
        assert "account_email_corrected" in audit_actions(session)


def test_the_old_address_leaves_suppression_only_when_asked(ctx: AppContext) -> None:
    with ctx.db.session() as session:
        acc, _ = make_applicant(session)
        suppression.suppress(session, acc.email, "userunknown")
        result = actions.correct_email(
            session, ctx.settings, acc.id, "new@example.com", "chen", lift_old=True
        )
        assert result.lifted == 1
        assert suppression.active_suppression(session, "wang@example.com") is None
        assert "suppression_lifted" in audit_actions(session)


def test_correcting_a_submitted_applicant_requeues_the_registration_notice(ctx: AppContext) -> None:
    with ctx.db.session() as session:
        acc, app = make_applicant(session, status=ApplicationStatus.SUBMITTED)
        result = actions.correct_email(session, ctx.settings, acc.id, "fixed@example.com", "chen")
        assert result.mail is not None and result.mail.template == "registration-received"
        assert result.mail.to_address == "fixed@example.com"
        assert (
            result.mail.context["ubn"] == app.ubn and result.mail.context["company_name"] == app.company_name
        )


def test_a_verified_applicant_with_nothing_pending_gets_no_mail(ctx: AppContext) -> None:
    with ctx.db.session() as session:
        acc, _ = make_applicant(session, status=ApplicationStatus.REJECTED)
        result = actions.correct_email(session, ctx.settings, acc.id, "other@example.com", "chen")
        assert result.mail is None


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("not-an-address", "Email格式不正確"),
        ("", "Email"),
        ("WANG@example.com", "相同"),
        ("a@b.c\n", "Email"),
    ],
)
def test_a_bad_new_address_changes_nothing(ctx: AppContext, address: str, message: str) -> None:
    with ctx.db.session() as session:
        acc, _ = make_applicant(session)
        acc.email_undeliverable = True
        issue_token(session, ctx.settings, acc, TokenPurpose.VERIFY_EMAIL, acc.email)
    with ctx.db.session() as session:
        with pytest.raises(actions.ActionError) as refused:
            actions.correct_email(session, ctx.settings, acc.id, address, "chen")
        assert message in refused.value.message
    with ctx.db.session() as session:
        same = session.get(Account, acc.id)
        assert same is not None and same.email == "wang@example.com" and same.email_undeliverable
        assert (
            session.scalars(select(VerificationToken).where(VerificationToken.voided_at.is_not(None))).all()
            == []
        )
        assert session.scalars(select(OutboxMessage)).all() == []


def test_resending_a_plain_mail_copies_it_to_the_current_address(ctx: AppContext) -> None:
    with ctx.db.session() as session:
        acc, _ = make_applicant(session)
        original = make_mail(session, acc, "document-approved", context={"name": acc.name, "note": "通過"})
        acc.email, acc.email_key = "moved@example.com", "moved@example.com"
        copy = actions.resend_mail(session, ctx.settings, original.id, "chen")
        assert copy.id != original.id and copy.template == "document-approved"
        assert copy.to_address == "moved@example.com" and copy.context["note"] == "通過"
        assert "mail_resent" in audit_actions(session)


def test_resending_a_verification_mail_issues_a_fresh_token(ctx: AppContext) -> None:
    with ctx.db.session() as session:
        acc, _ = make_applicant(session)
        _, first = issue_token(session, ctx.settings, acc, TokenPurpose.VERIFY_EMAIL, acc.email)
        original = make_mail(session, acc, "account-approved", context={"verify_url": "http://x/verify/OLD"})
        copy = actions.resend_mail(session, ctx.settings, original.id, "chen")
        assert copy.token_id not in (None, first.id)
        assert "OLD" not in copy.context["verify_url"]
        older = session.get(VerificationToken, first.id, populate_existing=True)
        assert older is not None and older.voided_at is not None


def test_a_binding_request_is_not_resent_by_support(ctx: AppContext) -> None:
    with ctx.db.session() as session:
        acc, _ = make_applicant(session)
        original = make_mail(session, acc, "binding-request")
        with pytest.raises(actions.ActionError) as refused:
            actions.resend_mail(session, ctx.settings, original.id, "chen")
        assert refused.value.status == 409


def test_lifting_a_suppression(ctx: AppContext) -> None:
    with ctx.db.session() as session:
        suppression.suppress(session, "gone@example.com", "userunknown")
        assert actions.lift_suppression(session, "GONE@example.com", "chen") == 1
        assert suppression.active_suppression(session, "gone@example.com") is None
        with pytest.raises(actions.ActionError) as refused:
            actions.lift_suppression(session, "gone@example.com", "chen")
        assert refused.value.status == 409


def test_the_correction_form_end_to_end_over_http(
    ctx: AppContext, client: TestClient, settings: Settings
) -> None:

    with ctx.db.session() as session:
        acc, app = make_applicant(session)
        item = make_bounce_item(session, acc, app, make_mail(session, acc))
        suppression.suppress(session, acc.email, "userunknown")
        staff = make_staff(session)
    sign_in(client, settings, staff)
    back = f"/support/items/{item.id}"
    token = csrf_of(client, back)
    bad = client.post(
        f"/support/accounts/{acc.id}/email", data={"csrf_token": token, "email": "nope", "back": back}
    )
    assert bad.status_code == 422 and "Email格式不正確" in bad.text
    answer = client.post(
        f"/support/accounts/{acc.id}/email",
        data={
            "csrf_token": token,
            "email": "wang2@example.com",
            "lift_old": "1",
            "item_id": str(item.id),
            "back": back,
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303 and answer.headers["location"] == back + "?done=corrected"
    page = client.get(answer.headers["location"]).text
    assert "wang2@example.com" in page and "重新排入寄送佇列" in page
    with ctx.db.session() as session:
        assert [m.template for m in outbox_to(session, "wang2@example.com")] == ["account-approved"]
        assert suppression.active_suppression(session, "wang@example.com") is None
    lift = client.post("/support/suppressions/lift", data={"csrf_token": token, "address": "x@example.com"})
    assert lift.status_code == 409
