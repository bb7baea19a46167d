"""mailflow.accounts.lookup: the account and application lookups every part shares."""

from __future__ import annotations

from mailflow.accounts import lookup
from mailflow.context import AppContext
from mailflow.models import AccountStatus, Application, ApplicationStatus
from tests.factories import make_account, make_applicant, make_mail


def test_live_account_by_its_id_as_typed_and_never_a_rejected_one(ctx: AppContext) -> None:
    with ctx.db.session() as session:
        rejected = make_account(session, account="Harbor01", email="old@example.com",
                                status=AccountStatus.REJECTED)
        rejected.account_key = None  # a rejection frees the 帳號
        live = make_account(session, account="Wang1234", email="wang@example.com")
        assert lookup.live_account(session, "  wANG1234 ") is live
        assert lookup.live_account(session, "harbor01") is None
        assert lookup.live_account(session, "   ") is None
        assert lookup.live_account(session, "nobody99") is None


def test_accounts_by_address_by_its_key_oldest_first_and_the_newest_alone(ctx: AppContext) -> None:
    with ctx.db.session() as session:
        first = make_account(session, account="first001", email="same@example.com")
        second = make_account(session, account="second01", email="same@example.com")
        make_account(session, account="other001", email="other@example.com")
        assert lookup.accounts_with_address(session, " SAME@Example.com ") == [first, second]
        assert lookup.account_by_address(session, "Same@ｅｘａｍｐｌｅ.com") is second
        assert lookup.accounts_with_address(session, "") == []
        assert lookup.account_by_address(session, "") is None
        assert lookup.account_by_address(session, "nobody@example.com") is None


def test_account_of_mail(ctx: AppContext) -> None:
    with ctx.db.session() as session:
        account, _ = make_applicant(session)
        mail = make_mail(session, account)
        assert lookup.account_of_mail(session, mail) is account
        mail.account_id = None
        assert lookup.account_of_mail(session, mail) is None
        assert lookup.account_of_mail(session, None) is None


def test_latest_application_one_and_many(ctx: AppContext) -> None:
    with ctx.db.session() as session:
        account, older = make_applicant(session, status=ApplicationStatus.REJECTED)
        newer = Application(account_id=account.id, ubn="12345675", ubn_key="12345675",
                            company_phone=older.company_phone, company_name="新公司",
                            company_address=older.company_address, company_owner=older.company_owner,
                            document_id=older.document_id, status=ApplicationStatus.SUBMITTED)
        session.add(newer)
        other, other_app = make_applicant(session, account="other001", email="o@example.com", ubn=None)
        bare = make_account(session, account="bare0001", email="b@example.com")
        session.flush()
        assert lookup.latest_application(session, account.id) is newer
        assert lookup.latest_application(session, bare.id) is None
        assert lookup.latest_applications(session, [account.id, other.id, bare.id]) == {
            account.id: newer, other.id: other_app}
        assert lookup.latest_applications(session, []) == {}
