"""Shared accounts (共用帳號): registering one, binding general accounts by consent mail, unbinding from
either side, the bound companies a login sees, and switching the active company (統編).

Decisions (the issue asked for them to be written down):
- A company (general account) may be bound to several shared accounts at once: a company may well be
  managed by two people. Each pair (shared, general) has at most one pending or active binding.
- Asking again while a request for the same pair is still pending (its link not yet expired) is refused
  with 409; to send a fresh mail the shared account first withdraws the pending request (the same unbind
  call), then asks again. A pending request whose link expired is marked expired on the next look and may
  be asked again.
- Nobody learns a company's data by asking (issue 13, finding 6: asking for general_account = 1…24 used
  to answer each company's 帳號, name and 統編). A general account that does not exist, is not a general
  account, is not approved, or has no verified address gets one and the same 409 (NOT_BINDABLE, the
  contract's code for "not verified"), which says what happens next — nothing was sent; check the 帳號 with
  the company and have it verify its Email first — without saying which of those it is. A request the
  company has not confirmed shows the shared side only what it typed (Binding.requested_as): no 帳號, no
  company name, no 統編, no flags until the binding is confirmed.
- Daily caps (fixed windows of a day from 08:00 Taipei time, mailflow.ratelimit counters, each taken in a
  short transaction of its own so they hold across workers and under concurrency): a shared account may
  ask SHARED_DAILY_LIMIT times a day (every request counts, refused ones too, so naming numbers one by one
  ends there), and a general account gets at most GENERAL_DAILY_LIMIT consent mails a day from all shared
  accounts together (request and withdraw in a loop used to mail the same company every time). Past
  either: 429 with Retry-After.
- Only the general account's password completes a binding: the /verify page checks the password of the
  token's account, which is the general account, so the shared account's own password is refused there.
- A general account that is later suspended, whose address stops being verified, or whose mails
  hard-bounce stays bound; the company list carries ``flags`` so the person sees it.
- Unbinding an active binding mails a ``binding-ended`` notice to the other side; withdrawing a pending
  request voids its link and mails nobody (the company never agreed to anything).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailflow import audit, ratelimit
from mailflow.accounts import signups
from mailflow.accounts.lookup import live_account
from mailflow.accounts.rules import ACCOUNT_FIELDS, validate_account_fields
from mailflow.accounts.tokens import issue_token
from mailflow.accounts.verification_mail import send_verification_mail, verify_url
from mailflow.config import Settings
from mailflow.db import Database, savepoint
from mailflow.mail import addresses
from mailflow.mail.queue import queue_binding_ended, queue_binding_request
from mailflow.models import (
    Account,
    AccountKind,
    AccountStatus,
    Application,
    ApplicationStatus,
    Binding,
    BindingStatus,
    TokenPurpose,
    VerificationToken,
)
from mailflow.models.base import MAX_ROW_ID
from mailflow.notify.events import binding_data, emit_event
from mailflow.passwords import hash_password
from mailflow.refusals import Refused
from mailflow.timeutil import iso_taipei, now

LIVE_STATUSES = (BindingStatus.PENDING, BindingStatus.ACTIVE)

SHARED_DAILY_LIMIT = 20  # binding requests one shared account may make a day, refused ones included
GENERAL_DAILY_LIMIT = 3  # consent mails one general account may get a day, from every shared account
DAY_SECONDS = 24 * 3600  # fixed windows from the epoch: a day turns at 08:00 Taipei time

# One answer for every general account that cannot be bound, whichever the reason (see the docstring).
NOT_BINDABLE = ("無法對此帳號送出綁定請求,未寄出任何信件。只有審核通過且已完成Email驗證的一般帳號可以綁定:"
                "請向該公司確認其一般帳號的帳號,並請對方完成Email驗證後再送出。")
MSG_SHARED_DAILY = f"您的共用帳號今天已送出 {SHARED_DAILY_LIMIT} 次綁定請求,已達上限,請明天再試。"
MSG_GENERAL_DAILY = "此帳號今天已收到多封綁定確認信,為避免打擾對方,請明天再試或請對方洽客服。"
MSG_PENDING = "已送出綁定請求,正在等待該一般帳號確認;如需重寄,請先取消原請求"


class BindingError(Refused):
    """A refused binding action."""


class BindingThrottled(BindingError):
    """A 429 of the daily caps: ``retry_after`` seconds until the day that refused it ends."""

    def __init__(self, message: str, retry_after: int, reason: str) -> None:
        super().__init__(429, message, reason)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Company:
    """A general account's company as a shared account sees it."""

    ubn: str
    name: str


# --- reading -------------------------------------------------------------------------------------------


def company_of(session: Session, general: Account) -> Company | None:
    """The company of a general account: its newest approved application, else its newest live one."""
    rows = session.scalars(
        select(Application).where(Application.account_id == general.id).order_by(Application.id.desc())
    ).all()
    chosen = next((a for a in rows if a.status == ApplicationStatus.APPROVED), None)
    chosen = chosen or next((a for a in rows if a.status != ApplicationStatus.REJECTED), None)
    return Company(chosen.ubn, chosen.company_name) if chosen else None


def account_flags(general: Account) -> list[str]:
    """Why a bound company may need attention; it stays bound regardless."""
    flags = []
    if general.status == AccountStatus.SUSPENDED:
        flags.append("suspended")
    elif general.status != AccountStatus.APPROVED:
        flags.append("not_approved")
    if not general.is_verified:
        flags.append("unverified")
    if general.email_undeliverable:
        flags.append("undeliverable")
    return flags


def active_bindings(session: Session, shared: Account) -> list[Binding]:
    return list(session.scalars(
        select(Binding)
        .where(Binding.shared_account_id == shared.id, Binding.status == BindingStatus.ACTIVE)
        .order_by(Binding.confirmed_at, Binding.id)
    ))


def bound_companies(session: Session, account: Account) -> list[dict[str, Any]]:
    """What a login shows: for a shared account the companies of its active bindings, each
    ``{"ubn", "name", "account", "binding_id", "active", "flags"}``; for a general account its own
    company ``{"ubn", "name"}``."""
    if account.kind != AccountKind.SHARED:
        own = company_of(session, account)
        return [{"ubn": own.ubn, "name": own.name}] if own else []
    companies = []
    for binding in active_bindings(session, account):
        general = session.get(Account, binding.general_account_id)
        company = company_of(session, general) if general else None
        if general is None or company is None:
            continue
        companies.append({
            "ubn": company.ubn, "name": company.name, "account": general.account,
            "binding_id": binding.id, "active": binding.active_ubn, "flags": account_flags(general),
        })
    return companies


def active_ubn(session: Session, account: Account) -> str | None:
    """The shared account's selected company, as marked on its bindings (None when none is)."""
    chosen = next((c for c in bound_companies(session, account) if c.get("active")), None)
    return str(chosen["ubn"]) if chosen else None


def _live_token(session: Session, binding: Binding) -> VerificationToken | None:
    return session.scalars(
        select(VerificationToken).where(
            VerificationToken.binding_id == binding.id,
            VerificationToken.used_at.is_(None),
            VerificationToken.voided_at.is_(None),
            VerificationToken.expires_at > now(),
        ).order_by(VerificationToken.id.desc())
    ).first()


def expire_if_stale(session: Session, binding: Binding) -> bool:
    """Mark a pending binding expired once no usable link is left; True when it was expired."""
    if binding.status != BindingStatus.PENDING or _live_token(session, binding) is not None:
        return False
    binding.status = BindingStatus.EXPIRED
    binding.ended_at = now()
    audit.record(session, "system", "binding.expired", "binding", binding.id)
    return True


def bindings_of(session: Session, account: Account) -> list[Binding]:
    """Pending and active bindings on either side of ``account`` (stale pending ones expire here)."""
    side = Binding.shared_account_id if account.kind == AccountKind.SHARED else Binding.general_account_id
    rows = session.scalars(
        select(Binding).where(side == account.id, Binding.status.in_(LIVE_STATUSES)).order_by(Binding.id)
    ).all()
    return [b for b in rows if not expire_if_stale(session, b)]


def describe_binding(session: Session, binding: Binding, viewer: Account) -> dict[str, Any]:
    """A binding as the API and the /account page show it to ``viewer``, either side. The shared side sees
    the company (its 帳號, name, 統編, flags) only once the company has confirmed the binding; before that,
    the general account as the requester typed it and nulls."""
    shared = session.get(Account, binding.shared_account_id)
    general = session.get(Account, binding.general_account_id)
    if viewer.id == binding.shared_account_id and binding.confirmed_at is None:
        general = None
    company = company_of(session, general) if general else None
    return {
        "id": binding.id,
        "status": binding.status,
        "shared_account": shared.account if shared else None,
        "shared_name": shared.name if shared else None,
        "general_account": general.account if general else binding.requested_as,
        "ubn": company.ubn if company else None,
        "company_name": company.name if company else None,
        "requested_at": iso_taipei(binding.requested_at),
        "confirmed_at": iso_taipei(binding.confirmed_at),
        "flags": account_flags(general) if general else [],
    }


# --- registering --------------------------------------------------------------------------------------


def create_shared_account(session: Session, clean: dict[str, Any], password_hash: str) -> Account:
    """A shared account from validated fields. It needs no company review, so it is approved at once;
    logging in and binding still wait for its address to be verified. Raises BindingError(409) when the
    account id is taken by a live account (general or shared: one namespace)."""
    if live_account(session, clean["account"]) is not None:
        raise BindingError(409, "帳號已經存在")
    account = Account(
        kind=AccountKind.SHARED, account=clean["account"], account_key=clean["account"].strip().lower(),
        name=clean["name"], mobile=clean["mobile"], email=clean["email"],
        email_key=addresses.key(clean["email"]), password_hash=password_hash,
        status=AccountStatus.APPROVED, approved_at=now(),
    )
    session.add(account)
    session.flush()
    audit.record(session, f"account:{account.id}", "shared.registered", "account", account.id)
    return account


class SignupRefused(Refused):
    """A refused shared sign-up: ``errors`` maps each field to its zh-TW message (422 fields that break
    the rules, 409 a 帳號 already taken)."""

    def __init__(self, status: int, errors: dict[str, str], reason: str) -> None:
        super().__init__(status, next(iter(errors.values()), ""), reason)
        self.errors = errors


def register_shared(session: Session, db: Database, settings: Settings, data: dict[str, str],
                    client: str | None) -> Account:
    """Sign up a shared account from the typed fields and queue its verification mail, in the caller's
    transaction. Within the sign-up limits of mailflow.accounts.signups (each counted in a short
    transaction of its own on ``db``): raises signups.SignupThrottled; SignupRefused for the fields."""
    signups.admit_client(db, client)
    clean, errors = validate_account_fields({k: data.get(k, "") for k in ACCOUNT_FIELDS})
    if errors:
        raise SignupRefused(422, errors, "fields")
    signups.admit_recipient(db, clean["email"])
    try:
        account = create_shared_account(session, clean, hash_password(clean["password"]))
    except BindingError as exc:
        raise SignupRefused(exc.status, {"account": exc.message}, "taken") from None
    except IntegrityError:
        # A concurrent registration of the same id won the unique index. Nothing else was written yet,
        # so the whole transaction goes (a SAVEPOINT would commit early under pysqlite's autocommit).
        session.rollback()
        raise SignupRefused(409, {"account": "帳號已經存在"}, "taken") from None
    send_verification_mail(session, settings, account, "account-approved")
    return account


# --- binding ------------------------------------------------------------------------------------------


def require_bindable_shared(account: Account) -> None:
    """A shared account may ask for bindings only once its address is verified."""
    if account.kind != AccountKind.SHARED:
        raise BindingError(403, "只有共用帳號可以綁定一般帳號")
    if account.status != AccountStatus.APPROVED or not account.is_verified:
        raise BindingError(403, "共用帳號的Email尚未完成驗證,請先完成Email驗證後再綁定")


def find_account_by_reference(session: Session, reference: str | int) -> Account | None:
    """A live account by its name, or by the number POST /api/applications answered (its ``id``, the
    application's id; the one number a client holds for a general account): an int, or a string of
    ASCII digits that is no account's name (names start with a letter, so a digit string is read as a
    name only for data older than that rule)."""
    if isinstance(reference, str):
        found = live_account(session, reference)
        text = reference.strip()
        if found is not None or not (text.isascii() and text.isdigit()):
            return found
        reference = int(text)
    if not 1 <= reference <= MAX_ROW_ID:
        return None
    application = session.get(Application, reference)
    account = application.account if application is not None else None
    # A rejected account gave its name up (account_key None): by number it is as gone as by name.
    return account if account is not None and account.account_key is not None else None


def _bindable_general(session: Session, reference: str | int) -> Account:
    """The general account named, when it may be bound; else BindingError(409, NOT_BINDABLE), the same
    answer for every reason."""
    general = find_account_by_reference(session, reference)
    if (general is None or general.kind != AccountKind.GENERAL or general.status != AccountStatus.APPROVED
            or not general.is_verified):
        raise BindingError(409, NOT_BINDABLE)
    return general


def _live_pair(session: Session, shared: Account, general: Account) -> tuple[Binding | None, list[Binding]]:
    """(the pair's live binding — active, or pending with a usable link —, its pending requests whose
    links are all gone). Reads only: the caller expires the stale ones after taking its counters."""
    rows = session.scalars(
        select(Binding).where(
            Binding.shared_account_id == shared.id,
            Binding.general_account_id == general.id,
            Binding.status.in_(LIVE_STATUSES),
        )
    ).all()
    stale = [b for b in rows if b.status == BindingStatus.PENDING and _live_token(session, b) is None]
    return next((b for b in rows if b not in stale), None), stale


def _take(session: Session, db: Database, key: str, limit: int, message: str, reason: str) -> None:
    """Count one against a daily cap in a short transaction of its own, so the count stays whatever
    becomes of the request and no row lock is held while it goes on; raises BindingThrottled past
    ``limit``. The request's own transaction has only read so far: it ends first and gives its connection
    back, so no request holds one pooled connection while it waits for a second (25 at once used to
    exhaust the pool)."""
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("a binding request counts its caps before it writes anything")
    session.commit()
    with db.session() as counters:
        wait = ratelimit.take(counters, key, limit, DAY_SECONDS)
    if wait is not None:
        raise BindingThrottled(message, wait, reason)


def request_binding(
    session: Session, settings: Settings, shared: Account, general_account_id: str | int, *, db: Database
) -> Binding:
    """Ask ``general_account_id`` (its name, or its number: see find_account_by_reference) to be
    bound to ``shared``: a pending binding and a consent mail to the general account's verified address,
    in the caller's transaction. The daily caps are counted through ``db`` in transactions of their own
    before this one writes anything (see _take: the caller's transaction must not have written yet; it
    is committed before each count). Raises BindingError (BindingThrottled past a daily cap)."""
    require_bindable_shared(shared)
    _take(session, db, f"binding-shared|{shared.id}", SHARED_DAILY_LIMIT, MSG_SHARED_DAILY, "shared")
    general = _bindable_general(session, general_account_id)
    existing, stale = _live_pair(session, shared, general)
    if existing is not None and existing.status == BindingStatus.ACTIVE:
        raise BindingError(409, "此一般帳號已經綁定於您的共用帳號")
    if existing is not None:
        raise BindingError(409, MSG_PENDING)
    _take(session, db, f"binding-general|{general.id}", GENERAL_DAILY_LIMIT, MSG_GENERAL_DAILY, "general")
    for old in stale:
        expire_if_stale(session, old)
    company = company_of(session, general)
    binding = Binding(shared_account_id=shared.id, general_account_id=general.id,
                      status=BindingStatus.PENDING, requested_as=str(general_account_id).strip()[:40])
    session.flush()  # a stale request just marked expired must leave the live-pair index first
    try:
        with savepoint(session):  # in this transaction: the binding commits with its link
            session.add(binding)
    except IntegrityError:  # the same request arrived twice at the same moment: one wins
        raise BindingError(409, MSG_PENDING) from None
    address = general.email_verified_address or general.email
    token, row = issue_token(session, settings, general, TokenPurpose.BINDING, address, binding_id=binding.id)
    queue_binding_request(session, settings, general, shared, company, address, verify_url(settings, token),
                          row)
    audit.record(session, f"account:{shared.id}", "binding.requested", "binding", binding.id,
                 general_account_id=general.id)
    return binding


def confirm_binding(session: Session, token_row: VerificationToken) -> None:
    """Complete a binding once its consent link was confirmed with the general account's password
    (checked by the caller, POST /verify/{token}). Raises BindingError(410) when the request was
    withdrawn or ended meanwhile, BindingError(409) when the general account no longer qualifies."""
    binding = session.get(Binding, token_row.binding_id) if token_row.binding_id else None
    if binding is None or binding.general_account_id != token_row.account_id:
        raise BindingError(400, "此連結無效")
    if binding.status == BindingStatus.ACTIVE:
        return
    if binding.status != BindingStatus.PENDING:
        raise BindingError(410, "此綁定請求已取消或失效")
    general = session.get(Account, binding.general_account_id)
    if general is None or general.status != AccountStatus.APPROVED or not general.is_verified:
        raise BindingError(409, "此一般帳號目前無法綁定")
    binding.status = BindingStatus.ACTIVE
    binding.confirmed_at = now()
    audit.record(session, f"account:{general.id}", "binding.confirmed", "binding", binding.id,
                 shared_account_id=binding.shared_account_id)
    emit_event(session, "binding.confirmed", general.id, binding_data(session, binding))


# --- unbinding ----------------------------------------------------------------------------------------


def _void_binding_tokens(session: Session, binding: Binding, at: datetime) -> None:
    session.execute(
        update(VerificationToken)
        .where(VerificationToken.binding_id == binding.id, VerificationToken.used_at.is_(None),
               VerificationToken.voided_at.is_(None))
        .values(voided_at=at)
    )


def end_binding(session: Session, settings: Settings, binding_id: int, by: Account) -> Binding:
    """Unbind (or withdraw a pending request) from either side; an ended active binding mails a
    ``binding-ended`` notice to the other side. Raises BindingError (404 not yours, 409 not live)."""
    binding = session.get(Binding, binding_id)
    if binding is None or by.id not in (binding.shared_account_id, binding.general_account_id):
        raise BindingError(404, "查無此綁定")
    if binding.status not in LIVE_STATUSES:
        raise BindingError(409, "此綁定已經解除或失效")
    was_active = binding.status == BindingStatus.ACTIVE
    at = now()
    binding.status, binding.ended_at, binding.active_ubn = BindingStatus.UNBOUND, at, False
    _void_binding_tokens(session, binding, at)
    shared = session.get(Account, binding.shared_account_id)
    general = session.get(Account, binding.general_account_id)
    by_side = "shared" if by.id == binding.shared_account_id else "general"
    audit.record(session, f"account:{by.id}", "binding.ended", "binding", binding.id, by=by_side,
                 was_active=was_active)
    if was_active:
        emit_event(session, "binding.ended", binding.general_account_id,
                   {**binding_data(session, binding), "ended_by": by_side})
    if was_active and shared is not None and general is not None:
        other = general if by_side == "shared" else shared
        queue_binding_ended(session, settings, other, general=general, shared=shared,
                            company=company_of(session, general), ended_by=by_side, ended_at=at)
    return binding


# --- switching ----------------------------------------------------------------------------------------


def switch_company(session: Session, shared: Account, ubn: str) -> dict[str, Any]:
    """Select the active 統編 among the shared account's bound companies and record it in the audit
    trail. Raises BindingError(403) for a company that is not bound."""
    if shared.kind != AccountKind.SHARED:
        raise BindingError(403, "只有共用帳號可以切換公司")
    wanted = (ubn or "").strip()
    companies = bound_companies(session, shared)
    chosen = next((c for c in companies if c["ubn"] == wanted), None)
    if chosen is None:
        raise BindingError(403, "此公司未綁定於您的共用帳號")
    for binding in active_bindings(session, shared):
        binding.active_ubn = binding.id == chosen["binding_id"]
    audit.record(session, f"account:{shared.id}", "shared.switch", "account", shared.id, ubn=wanted,
                 binding_id=chosen["binding_id"])
    return {**chosen, "active": True}
