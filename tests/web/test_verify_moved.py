"""A link mailed to an address the account no longer has says so — the Email was changed and a new mail
went to the new address (issue 15 item 6) — on the page (GET, 410 as for any dead link) and on POST (409),
whatever password comes with it: the answer must not tell a right password from a wrong one (issue 13
finding 1: it did, 410 for wrong and 409 for right, without limit). 410 stays for dead links whose
address still matches.

End to end: the application is approved (account-approved mail with the link), customer service corrects
the address (mailflow.support.actions), and the applicant uses the old and then the new link."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from fastapi.testclient import TestClient
from sqlalchemy import select

from mailflow.accounts import review
from mailflow.context import AppContext
from mailflow.models import Account, Application, OutboxMessage, SupportItem, VerificationToken
from mailflow.support import actions
from mailflow.timeutil import now
from tests.factories import PASSWORD, add_submitted

OLD, NEW = "example1234@example.com", "wang.new@example.org"
MOVED = "帳號的 Email 已變更"
NEW_MAIL_SENT = "新的驗證信已寄到新的 Email"


def approved(ctx: AppContext) -> int:
    """An approved applicant's account id; its account-approved mail went to OLD."""
    application_id = add_submitted(ctx)
    with ctx.db.session() as session:
        review.approve(session, ctx.settings, application_id, "staff:lin")
        application = session.get(Application, application_id)
        assert application is not None
        return application.account_id


def link_to(ctx: AppContext, address: str) -> str:
    """The path of the newest verification link mailed to ``address``."""
    with ctx.db.session() as session:
        mail = session.scalars(select(OutboxMessage).where(OutboxMessage.to_key == address,
                                                           OutboxMessage.token_id.is_not(None))
                               .order_by(OutboxMessage.id.desc())).first()
        assert mail is not None
        return urlsplit(str(mail.context["verify_url"])).path


def correct(ctx: AppContext, account_id: int, address: str = NEW) -> int:
    """Customer service corrects the address; the number of links it voided."""
    with ctx.db.session() as session:
        result = actions.correct_email(session, ctx.settings, account_id, address, "chen")
        assert result.mail is not None  # the new verification mail
        return result.voided


def account(ctx: AppContext, account_id: int) -> Account:
    with ctx.db.session() as session:
        row = session.get(Account, account_id)
        assert row is not None
        session.expunge(row)
        return row


def test_the_old_link_after_an_email_correction_says_so_and_the_new_one_verifies(
    ctx: AppContext, client: TestClient
) -> None:
    account_id = approved(ctx)
    old_link = link_to(ctx, OLD)
    assert correct(ctx, account_id) == 1  # the old link is voided: the page must look past that
    answer = client.post(old_link, data={"password": PASSWORD})
    assert answer.status_code == 409 and MOVED in answer.text and NEW_MAIL_SENT in answer.text
    assert NEW not in answer.text  # the holder of the old mail does not learn the new address
    assert not account(ctx, account_id).is_verified
    with ctx.db.session() as session:
        assert session.scalar(select(SupportItem.account_id)) == account_id  # 客服 sees the old link used
    # The page keeps its contract (400/410 only), consumes nothing, and says the same.
    page = client.get(old_link)
    assert page.status_code == 410 and MOVED in page.text and NEW_MAIL_SENT in page.text
    new_link = link_to(ctx, NEW)
    assert new_link != old_link
    assert client.post(new_link, data={"password": PASSWORD}).status_code == 200
    verified = account(ctx, account_id)
    assert verified.is_verified and verified.email_verified_address == NEW
    again = client.post(old_link, data={"password": PASSWORD})
    assert again.status_code == 409 and MOVED in again.text  # still not OLD's


def test_the_moved_link_answers_the_same_to_any_password_and_counts_nothing(
    ctx: AppContext, client: TestClient
) -> None:
    account_id = approved(ctx)
    old_link = link_to(ctx, OLD)
    correct(ctx, account_id)
    answers = {password: client.post(old_link, data={"password": password})
               for password in ("", "guess-1", PASSWORD, PASSWORD + "x")}
    assert {a.status_code for a in answers.values()} == {409}
    # The same page for the right password as for the wrong ones: nothing to tell them apart.
    assert len({a.text for a in answers.values()}) == 1
    with ctx.db.session() as session:
        assert session.scalar(select(VerificationToken.wrong_passwords)
                              .where(VerificationToken.address == OLD)) == 0
    # 40 more guesses: still the same answer, never a 429 and never a verdict.
    for n in range(40):
        assert client.post(old_link, data={"password": f"guess-{n}"}).status_code == 409


def test_a_used_or_expired_link_whose_address_changed_is_409(ctx: AppContext, client: TestClient) -> None:
    account_id = approved(ctx)
    used = link_to(ctx, OLD)
    assert client.post(used, data={"password": PASSWORD}).status_code == 200
    correct(ctx, account_id)  # a verified account whose address changes must verify the new one
    assert client.post(used, data={"password": "not-the-password"}).status_code == 409
    expired = link_to(ctx, NEW)
    with ctx.db.session() as session:
        for row in session.scalars(select(VerificationToken).where(VerificationToken.address == NEW)):
            row.expires_at = now() - timedelta(minutes=1)
    assert client.post(expired, data={"password": PASSWORD}).status_code == 410  # its address still holds
    correct(ctx, account_id, "third@example.net")
    assert client.post(expired, data={"password": ""}).status_code == 409


def test_dead_links_whose_address_still_matches_stay_410(ctx: AppContext, client: TestClient) -> None:
    account_id = approved(ctx)
    first = link_to(ctx, OLD)
    with ctx.db.session() as session:
        row = session.get(Account, account_id)
        assert row is not None
        actions.pending_mail(session, ctx.settings, row)  # a newer mail to the same address voids it
    answer = client.post(first, data={"password": PASSWORD})
    assert answer.status_code == 410 and MOVED not in answer.text
    second = link_to(ctx, OLD)
    assert client.post(second, data={"password": PASSWORD}).status_code == 200
    assert client.post(second, data={"password": PASSWORD}).status_code == 410
