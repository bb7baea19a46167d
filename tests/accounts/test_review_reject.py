"""Rejecting an application below the web: account-rejected lists every reason, and document-rejected
(the company document's review notice) goes too, to the same address, exactly when a reason concerns
the company document."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mailflow.accounts import review
from mailflow.context import AppContext
from mailflow.mail.render import render_parts
from mailflow.models import (
    AuditEvent,
    OutboxMessage,
)
from tests.factories import add_submitted

BRC = review.STANDARD_REASONS["brc-obsolete"]
PERSON = review.STANDARD_REASONS["person-name"]
UBN_MISMATCH = review.STANDARD_REASONS["ubn-mismatch"]


def reject(ctx: AppContext, application_id: int, codes: list[str], texts: list[str]) -> None:
    with ctx.db.session() as session:
        reasons = review.resolve_reasons(codes, texts)
        review.reject(session, ctx.settings, application_id, "staff:lin", reasons)


def queued(ctx: AppContext) -> list[OutboxMessage]:
    with ctx.db.session() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def test_a_document_reason_queues_document_rejected_with_only_the_documents_reasons(ctx: AppContext) -> None:
    application_id = add_submitted(ctx)
    reject(ctx, application_id, ["brc-obsolete", "person-name", "ubn-mismatch"], ["公司地址請填寫完整門牌"])
    account_mail, document_mail = queued(ctx)
    assert [account_mail.template, document_mail.template] == ["account-rejected", "document-rejected"]
    assert account_mail.to_address == document_mail.to_address == "example1234@example.com"
    assert document_mail.application_id == account_mail.application_id == application_id
    assert account_mail.context["reasons"] == [BRC, PERSON, UBN_MISMATCH, "公司地址請填寫完整門牌"]
    assert document_mail.context["reasons"] == [BRC, UBN_MISMATCH]
    with ctx.db.session() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "application.rejected")).one()
        assert event.details["document_reasons"] == [BRC, UBN_MISMATCH]


def test_the_document_rejected_mail_renders_every_value_it_was_given(ctx: AppContext) -> None:
    reject(ctx, add_submitted(ctx), ["doc-unreadable"], [])
    (mail,) = [m for m in queued(ctx) if m.template == "document-rejected"]
    parts = render_parts(ctx.settings, mail.template, dict(mail.context))
    assert parts.subject == "通行證系統公司文件審核通知信件(未通過)"
    assert parts.text.startswith("臺灣港務股份有限公司基隆分公司 您好:")
    assert "1. 文件模糊無法辨識,請重新掃描或拍攝清晰完整之文件" in parts.text
    assert "(公司統編 04595257,帳號申請人 王小明)" in parts.text
    assert "<li>文件模糊無法辨識,請重新掃描或拍攝清晰完整之文件</li>" in parts.html
    assert "0809-088-568" in parts.text


@pytest.mark.parametrize("codes, texts", [
    (["person-name"], []),
    (["duplicate-company"], ["請洽客服"]),
    ([], ["文件模糊"]),  # free text is not classified: only the standard reasons are known to be about it
])
def test_without_a_document_reason_only_account_rejected_is_queued(
    ctx: AppContext, codes: list[str], texts: list[str]
) -> None:
    reject(ctx, add_submitted(ctx), codes, texts)
    assert [m.template for m in queued(ctx)] == ["account-rejected"]


def test_a_refused_rejection_queues_neither_mail(ctx: AppContext) -> None:
    application_id = add_submitted(ctx)
    reject(ctx, application_id, ["doc-outdated"], [])
    assert len(queued(ctx)) == 2
    with pytest.raises(review.ReviewError) as caught:
        reject(ctx, application_id, ["doc-outdated"], [])
    assert caught.value.status == 409
    assert len(queued(ctx)) == 2


def test_every_document_code_is_a_standard_reason_and_the_person_ones_are_not() -> None:
    assert set(review.STANDARD_REASONS) >= review.DOCUMENT_REASON_CODES
    assert not {"person-name", "duplicate-company"} & review.DOCUMENT_REASON_CODES
    assert review.document_reasons([PERSON, BRC, "自由填寫"]) == [BRC]


def test_document_approved_carries_the_configured_pass_system_address(ctx: AppContext) -> None:
    ctx.settings = ctx.settings.updated(mail={"pass_system_url": "https://pass.example.gov.tw/apply/"})
    application_id = add_submitted(ctx)
    with ctx.db.session() as session:
        review.approve(session, ctx.settings, application_id, "reviewer:lin", note="文件齊全")
    with ctx.db.session() as session:
        query = select(OutboxMessage).where(OutboxMessage.template == "document-approved")
        mail = session.scalars(query).one()
        text = render_parts(ctx.settings, mail.template, mail.context).text
    assert "https://pass.example.gov.tw/apply/" in text and "twportpass" not in text
