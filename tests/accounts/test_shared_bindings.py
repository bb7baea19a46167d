"""Shared accounts (共用帳號) below the web: binding requests and their consent mail, confirmation with the
general account's password, expiry, unbinding from either side, flags on bound companies, switching."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from mailflow.accounts import shared
from mailflow.accounts.shared import BindingError
from mailflow.accounts.tokens import TokenError, load_token
from mailflow.accounts.verification import VerifyError, complete_verification
from mailflow.context import AppContext
from mailflow.mail.render import render_parts
from mailflow.models import (
    Account,
    AccountKind,
    AccountStatus,
    Application,
    AuditEvent,
    Binding,
    BindingStatus,
    OutboxMessage,
    TokenPurpose,
    VerificationToken,
)
from mailflow.timeutil import now
from tests.factories import PASSWORD, SHARED_PASSWORD, add_general, add_shared


def ask(ctx: AppContext, shared_id: int, general_account: str) -> int:
    with ctx.db.session() as session:
        requester = session.get(Account, shared_id)
        assert requester is not None
        return shared.request_binding(session, ctx.settings, requester, general_account, db=ctx.db).id


def refusal(ctx: AppContext, shared_id: int, general_account: str) -> tuple[int, str]:
    with pytest.raises(BindingError) as caught:
        ask(ctx, shared_id, general_account)
    return caught.value.status, caught.value.message


def consent_link(ctx: AppContext, binding_id: int) -> str:
    """The token of the binding's newest consent mail, read from the outbox like dispatch would."""
    with ctx.db.session() as session:
        token_ids = select(VerificationToken.id).where(VerificationToken.binding_id == binding_id)
        mail = session.scalars(select(OutboxMessage).where(OutboxMessage.token_id.in_(token_ids))
                               .order_by(OutboxMessage.id.desc())).first()
        assert mail is not None and mail.template == "binding-request"
        return str(mail.context["confirm_url"]).rsplit("/verify/", 1)[1]


def confirm(ctx: AppContext, token: str, password: str) -> None:
    with ctx.db.session() as session:
        complete_verification(session, ctx.settings, token, password)


def companies(ctx: AppContext, shared_id: int) -> list[dict[str, object]]:
    with ctx.db.session() as session:
        account = session.get(Account, shared_id)
        assert account is not None
        return shared.bound_companies(session, account)


def test_the_consent_mail_goes_to_the_general_accounts_verified_address_with_a_bound_72h_link(
        ctx: AppContext) -> None:
    general_id = add_general(ctx, "harbor01", "04595257")
    shared_id = add_shared(ctx)
    binding_id = ask(ctx, shared_id, "HARBOR01")  # account ids are case-insensitive
    with ctx.db.session() as session:
        mail = session.scalars(select(OutboxMessage)).one()
        token_row = session.get(VerificationToken, mail.token_id)
        assert token_row is not None
        assert (mail.template, mail.to_address, mail.account_id) == (
            "binding-request", "harbor01@example.com", general_id)
        assert mail.context["shared_account"] == "manager01" and mail.context["ubn"] == "04595257"
        assert mail.context["company_name"] == "harbor01股份有限公司"
        assert (token_row.account_id, token_row.purpose, token_row.address, token_row.binding_id) == (
            general_id, TokenPurpose.BINDING, "harbor01@example.com", binding_id)
        assert token_row.expires_at - token_row.issued_at == timedelta(hours=72)
        assert session.get(Binding, binding_id).status == BindingStatus.PENDING  # type: ignore[union-attr]
    assert companies(ctx, shared_id) == []


def test_only_the_general_accounts_password_completes_the_binding(ctx: AppContext) -> None:
    add_general(ctx, "harbor01", "04595257")
    shared_id = add_shared(ctx)
    binding_id = ask(ctx, shared_id, "harbor01")
    token = consent_link(ctx, binding_id)
    for wrong in (SHARED_PASSWORD, "not-the-password"):
        with pytest.raises(VerifyError) as caught:
            confirm(ctx, token, wrong)
        assert caught.value.status == 403
    assert companies(ctx, shared_id) == []
    confirm(ctx, token, PASSWORD)
    listed = companies(ctx, shared_id)
    assert [(c["ubn"], c["name"], c["flags"]) for c in listed] == [("04595257", "harbor01股份有限公司", [])]
    with ctx.db.session() as session:
        assert session.get(Binding, binding_id).confirmed_at is not None  # type: ignore[union-attr]


@pytest.mark.parametrize("target", ["nobody99", "unverified1", "pending1", "suspended1", "other01"])
def test_a_binding_is_refused_unless_the_general_account_is_approved_and_verified(
        ctx: AppContext, target: str) -> None:
    """One answer whichever the reason (issue 13, finding 6): asking tells nobody which accounts exist."""
    add_general(ctx, "unverified1", "04595257", verified=False)
    add_general(ctx, "pending1", "12345675", status=AccountStatus.PENDING)
    add_general(ctx, "suspended1", "22099131", status=AccountStatus.SUSPENDED)
    add_shared(ctx, "other01")
    shared_id = add_shared(ctx)
    assert refusal(ctx, shared_id, target) == (409, shared.NOT_BINDABLE)
    with ctx.db.session() as session:
        assert session.scalars(select(Binding)).all() == []
        assert session.scalars(select(OutboxMessage)).all() == []


def test_an_unverified_shared_account_cannot_ask(ctx: AppContext) -> None:
    add_general(ctx, "harbor01", "04595257")
    shared_id = add_shared(ctx, verified=False)
    assert refusal(ctx, shared_id, "harbor01")[0] == 403


def test_asking_twice_is_refused_while_pending_and_after_binding_but_another_shared_account_may_bind(
        ctx: AppContext) -> None:
    add_general(ctx, "harbor01", "04595257")
    shared_id = add_shared(ctx)
    binding_id = ask(ctx, shared_id, "harbor01")
    status, message = refusal(ctx, shared_id, "harbor01")
    assert status == 409 and "等待" in message
    confirm(ctx, consent_link(ctx, binding_id), PASSWORD)
    status, message = refusal(ctx, shared_id, "harbor01")
    assert status == 409 and "已經綁定" in message
    second = add_shared(ctx, "manager02")
    confirm(ctx, consent_link(ctx, ask(ctx, second, "harbor01")), PASSWORD)
    assert [c["ubn"] for c in companies(ctx, second)] == ["04595257"]
    assert [c["ubn"] for c in companies(ctx, shared_id)] == ["04595257"]


def test_an_expired_link_cannot_complete_and_the_request_may_be_made_again(ctx: AppContext) -> None:
    add_general(ctx, "harbor01", "04595257")
    shared_id = add_shared(ctx)
    binding_id = ask(ctx, shared_id, "harbor01")
    token = consent_link(ctx, binding_id)
    with ctx.db.session() as session:
        row = session.scalars(select(VerificationToken)
                              .where(VerificationToken.binding_id == binding_id)).one()
        row.expires_at = now() - timedelta(minutes=1)
    with pytest.raises(TokenError) as caught:
        confirm(ctx, token, PASSWORD)
    assert caught.value.status == 410
    again = ask(ctx, shared_id, "harbor01")
    with ctx.db.session() as session:
        assert session.get(Binding, binding_id).status == BindingStatus.EXPIRED  # type: ignore[union-attr]
    confirm(ctx, consent_link(ctx, again), PASSWORD)
    assert [c["ubn"] for c in companies(ctx, shared_id)] == ["04595257"]


def test_a_withdrawn_request_voids_its_link_and_mails_nobody(ctx: AppContext) -> None:
    add_general(ctx, "harbor01", "04595257")
    shared_id = add_shared(ctx)
    binding_id = ask(ctx, shared_id, "harbor01")
    token = consent_link(ctx, binding_id)
    with ctx.db.session() as session:
        requester = session.get(Account, shared_id)
        assert requester is not None
        shared.end_binding(session, ctx.settings, binding_id, requester)
    with ctx.db.session() as session, pytest.raises(TokenError) as caught:
        load_token(session, ctx.settings, token)
    assert caught.value.status == 410
    with ctx.db.session() as session:
        assert [m.template for m in session.scalars(select(OutboxMessage))] == ["binding-request"]
    ask(ctx, shared_id, "harbor01")  # a fresh request is allowed after withdrawing


def test_a_link_whose_request_was_withdrawn_meanwhile_changes_nothing(ctx: AppContext) -> None:
    add_general(ctx, "harbor01", "04595257")
    shared_id = add_shared(ctx)
    binding_id = ask(ctx, shared_id, "harbor01")
    with ctx.db.session() as session:
        token_row = session.scalars(select(VerificationToken)).one()
        session.get(Binding, binding_id).status = BindingStatus.UNBOUND  # type: ignore[union-attr]
        with pytest.raises(BindingError) as caught:
            shared.confirm_binding(session, token_row)
    assert caught.value.status == 410
    assert companies(ctx, shared_id) == []


@pytest.mark.parametrize("side", ["shared", "general"])
def test_unbinding_from_either_side_mails_the_other_side(ctx: AppContext, side: str) -> None:
    general_id = add_general(ctx, "harbor01", "04595257")
    shared_id = add_shared(ctx)
    binding_id = ask(ctx, shared_id, "harbor01")
    confirm(ctx, consent_link(ctx, binding_id), PASSWORD)
    by_id, other_address = (shared_id, "harbor01@example.com") if side == "shared" else (
        general_id, "manager01@example.org")
    with ctx.db.session() as session:
        by = session.get(Account, by_id)
        assert by is not None
        shared.end_binding(session, ctx.settings, binding_id, by)
    assert companies(ctx, shared_id) == []
    with ctx.db.session() as session:
        notice = session.scalars(select(OutboxMessage).where(OutboxMessage.template == "binding-ended")).one()
        assert notice.to_address == other_address and notice.context["ended_by"] == side
        assert notice.context["ubn"] == "04595257"
        parts = render_parts(ctx.settings, notice.template, notice.context)
        for words in ("解除綁定", "harbor01股份有限公司", "manager01", "民國", "0809-088-568"):
            assert words in parts.text and words in parts.html
        with pytest.raises(BindingError) as caught:
            shared.end_binding(session, ctx.settings, binding_id, session.get(Account, by_id))  # type: ignore[arg-type]
    assert caught.value.status == 409


def test_a_stranger_cannot_end_someone_elses_binding(ctx: AppContext) -> None:
    add_general(ctx, "harbor01", "04595257")
    shared_id = add_shared(ctx)
    stranger_id = add_shared(ctx, "stranger1")
    binding_id = ask(ctx, shared_id, "harbor01")
    with ctx.db.session() as session, pytest.raises(BindingError) as caught:
        shared.end_binding(session, ctx.settings, binding_id, session.get(Account, stranger_id))  # type: ignore[arg-type]
    assert caught.value.status == 404
    with ctx.db.session() as session:
        assert session.get(Binding, binding_id).status == BindingStatus.PENDING  # type: ignore[union-attr]


def test_a_suspended_or_bouncing_company_stays_bound_and_is_flagged(ctx: AppContext) -> None:
    suspended_id = add_general(ctx, "harbor01", "04595257")
    bouncing_id = add_general(ctx, "harbor02", "12345675")
    shared_id = add_shared(ctx)
    for general in ("harbor01", "harbor02"):
        confirm(ctx, consent_link(ctx, ask(ctx, shared_id, general)), PASSWORD)
    with ctx.db.session() as session:
        session.get(Account, suspended_id).status = AccountStatus.SUSPENDED  # type: ignore[union-attr]
        session.get(Account, bouncing_id).email_undeliverable = True  # type: ignore[union-attr]
    flags = {c["ubn"]: c["flags"] for c in companies(ctx, shared_id)}
    assert flags == {"04595257": ["suspended"], "12345675": ["undeliverable"]}


def test_switching_selects_a_bound_company_only_and_is_audited(ctx: AppContext) -> None:
    for general_account, ubn in (("harbor01", "04595257"), ("harbor02", "12345675")):
        add_general(ctx, general_account, ubn)
    add_general(ctx, "harbor03", "22099131")
    shared_id = add_shared(ctx)
    for general in ("harbor01", "harbor02"):
        confirm(ctx, consent_link(ctx, ask(ctx, shared_id, general)), PASSWORD)
    with ctx.db.session() as session:
        account = session.get(Account, shared_id)
        assert account is not None
        with pytest.raises(BindingError) as caught:
            shared.switch_company(session, account, "22099131")
        assert caught.value.status == 403
        shared.switch_company(session, account, "12345675")
    with ctx.db.session() as session:
        account = session.get(Account, shared_id)
        assert account is not None and shared.active_ubn(session, account) == "12345675"
        shared.switch_company(session, account, "04595257")
        assert shared.active_ubn(session, account) == "04595257"
        switches = session.scalars(select(AuditEvent).where(AuditEvent.action == "shared.switch")).all()
        assert [e.details["ubn"] for e in switches] == ["12345675", "04595257"]


def test_a_shared_account_id_shares_the_namespace_of_general_accounts(ctx: AppContext) -> None:
    add_general(ctx, "harbor01", "04595257")
    with ctx.db.session() as session, pytest.raises(BindingError) as caught:
        clean = {"account": "Harbor01", "name": "林美玲", "mobile": "0922333444", "email": "x@example.org"}
        shared.create_shared_account(session, clean, "hash")
    assert (caught.value.status, caught.value.message) == (409, "帳號已經存在")
    with ctx.db.session() as session:
        assert session.scalars(select(Account).where(Account.kind == AccountKind.SHARED)).all() == []


def test_two_identical_requests_racing_leave_one_live_binding(ctx: AppContext) -> None:
    """The check in request_binding can be passed by two requests at once; the database index decides."""
    from sqlalchemy.exc import IntegrityError

    from mailflow.models import Binding, BindingStatus

    general_id = add_general(ctx, "harbor07", "04595257")
    shared_id = add_shared(ctx)
    ask(ctx, shared_id, "harbor07")
    with pytest.raises(IntegrityError), ctx.db.session() as session:
        session.add(Binding(shared_account_id=shared_id, general_account_id=general_id,
                            status=BindingStatus.PENDING))
    with ctx.db.session() as session:  # an ended binding does not block a new request
        session.add(Binding(shared_account_id=shared_id, general_account_id=general_id,
                            status=BindingStatus.UNBOUND))


def test_a_general_account_is_found_by_name_or_by_its_registration_number(ctx: AppContext) -> None:
    add_shared(ctx)  # takes an account row first, so account ids and application ids differ
    general = add_general(ctx, "harbor01", "04595257")
    legacy = add_general(ctx, "2", "12345675")  # a name from before names had to start with a letter
    with ctx.db.session() as session:
        number = session.scalars(select(Application.id).where(Application.account_id == general)).one()
        assert number != general

        def found(reference: str | int) -> int | None:
            account = shared.find_account_by_reference(session, reference)
            return account.id if account is not None else None

        assert found("HARBOR01") == found(number) == found(str(number)) == general
        assert found("2") == legacy  # an existing name wins over the number
        assert found(2) == legacy and found(2**31) is None and found(0) is None and found("x9") is None
