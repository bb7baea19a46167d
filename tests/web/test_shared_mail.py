"""A shared account's verification mail (issue 15 item 5): registering a 共用帳號 queues the verification
mail with the account's kind, which gives it its own subject and wording; a general account's approval
mail keeps the seed's subject."""

from __future__ import annotations

from fastapi.testclient import TestClient

from mailflow.context import AppContext
from mailflow.mail.render import render_parts
from tests.factories import add_account
from tests.web.test_shared_web import SHARED_FIELDS, outbox
from tests.web.test_verify import mail_link


def test_registering_a_shared_account_mails_its_own_verification_wording(ctx: AppContext,
                                                                         client: TestClient) -> None:
    assert client.post("/api/shared-accounts", data=SHARED_FIELDS).status_code == 201
    (mail,) = outbox(ctx, "account-approved", SHARED_FIELDS["email"])
    assert mail.context["kind"] == "shared"
    parts = render_parts(ctx.settings, mail.template, mail.context)
    assert parts.subject == "通行證系統共用帳號註冊通知信件(請完成Email驗證)"
    assert "審核通過" not in parts.text and "共用帳號 manager01 已建立" in parts.text


def test_a_general_accounts_approval_mail_keeps_the_seed_subject(ctx: AppContext) -> None:
    mail_link(ctx, add_account(ctx))
    (mail,) = outbox(ctx, "account-approved")
    assert mail.context["kind"] == "general"
    parts = render_parts(ctx.settings, mail.template, mail.context)
    assert parts.subject == "通行證系統帳號註冊通知信件(審核通過,請完成Email驗證)"
    assert "已審核通過" in parts.text
