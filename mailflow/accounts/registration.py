"""Registration of a general account (一般帳號): from the submitted form to a pending account, its
application, its stored document and its queued registration-received mail.

Everything a registration writes commits in ONE transaction, here. With storage.backend = database the
document's bytes are part of it (mailflow.accounts.documents.add_document_row); with files, a file on
disk belongs to it: when the commit fails the stored file is removed again, so nothing of a refused
request stays either way.
Uniqueness (account id among live accounts, one live general account per 統一編號) is checked up front
for a friendly answer and enforced by the unique indexes for the race between two submissions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailflow import audit, ratelimit
from mailflow.accounts import documents
from mailflow.accounts.documents import DocumentError, StoredDocument, Upload
from mailflow.accounts.rules import check_field, message, validate_account_fields, validate_company_fields
from mailflow.accounts.signups import SignupThrottled
from mailflow.config import Settings
from mailflow.db import Database
from mailflow.mail import addresses
from mailflow.mail.queue import queue_registration_received
from mailflow.models import Account, AccountKind, AccountStatus, Application, ApplicationStatus
from mailflow.notify.events import application_data, emit_event
from mailflow.passwords import hash_password
from mailflow.refusals import Refused
from mailflow.timeutil import now

log = logging.getLogger(__name__)

# GET /api/account-availability: checks per client address and window (counted across workers).
AVAILABILITY_LIMIT = 30
AVAILABILITY_WINDOW_SECONDS = 600
AVAILABLE_TEXT = "此帳號目前可以使用(送出申請時會再確認一次)"


class RegistrationRefused(Exception):
    """The answer to a refused registration: HTTP status (422, 409, 413, 429, 503) and field → zh-TW
    message; ``retry_after`` (seconds) with a 429."""

    def __init__(self, status: int, errors: dict[str, str], retry_after: int | None = None) -> None:
        super().__init__(f"registration refused ({status}): {', '.join(sorted(errors))}")
        self.status = status
        self.errors = errors
        self.retry_after = retry_after


def throttled(exc: SignupThrottled, field: str) -> RegistrationRefused:
    return RegistrationRefused(429, {field: exc.message}, exc.retry_after)


def validate_registration(
    settings: Settings, fields: Mapping[str, Any], upload: Upload | None
) -> tuple[dict[str, str], StoredDocument]:
    """Every field rule and the document at once; the stored document is returned only when all pass."""
    clean, errors = validate_account_fields(fields)
    company, company_errors = validate_company_fields(fields)
    clean.update(company)
    errors.update(company_errors)
    try:
        stored = documents.store_upload(settings, upload)
    except DocumentError as exc:
        errors["document"] = exc.message
        # Too large and storage trouble outrank field errors in the status; the body still names them all.
        raise RegistrationRefused(exc.status, errors) from None
    if errors:
        documents.discard(stored)
        raise RegistrationRefused(422, errors)
    return clean, stored


def refuse_several_documents(fields: Mapping[str, Any]) -> RegistrationRefused:
    """The 422 for a request carrying more than one document: every field error plus that one."""
    errors = {**validate_account_fields(fields)[1], **validate_company_fields(fields)[1]}
    errors["document"] = message("document_many")
    return RegistrationRefused(422, errors)


def account_taken(session: Session, account: str) -> bool:
    """True when a live account (general or shared: one namespace) holds this account id."""
    return session.scalar(select(Account.id).where(Account.account_key == account.lower())) is not None


class AvailabilityRefused(Refused):
    """An availability check's answer other than free: 429 (``retry_after`` seconds), 422 the account
    id's rule, 409 taken."""

    def __init__(self, status: int, message: str, reason: str, retry_after: int | None = None) -> None:
        super().__init__(status, message, reason)
        self.retry_after = retry_after


def account_availability(db: Database, typed: str, client: str) -> str:
    """The account id as registration would store it, when it is free now; else AvailabilityRefused with
    the answer POST /api/applications would give about the account id alone. Each ``client`` address may
    ask AVAILABILITY_LIMIT times per window, so it lists account ids no faster than registering."""
    with db.session() as session:  # its own short transaction: the counter row is locked until commit
        wait = ratelimit.take(session, f"account-availability|{client}", AVAILABILITY_LIMIT,
                              AVAILABILITY_WINDOW_SECONDS)
    if wait is not None:
        minutes = max(1, -(-wait // 60))
        raise AvailabilityRefused(429, f"查詢次數過多,請 {minutes} 分鐘後再試;送出申請時仍會檢查帳號。",
                                  "throttled", wait)
    account, error = check_field("account", typed)
    if error:
        raise AvailabilityRefused(422, error, "rule")
    with db.session() as session:
        if account_taken(session, account):
            raise AvailabilityRefused(409, message("account_taken"), "taken")
    return account


def taken_fields(session: Session, account: str, ubn: str) -> dict[str, str]:
    """The 409 errors for an account id or 統一編號 already held by a live registration."""
    errors: dict[str, str] = {}
    if account_taken(session, account):
        errors["account"] = message("account_taken")
    if session.scalar(select(Application.id).where(Application.ubn_key == ubn)) is not None:
        errors["ubn"] = message("ubn_taken")
    return errors


def register_general(
    session: Session, settings: Settings, fields: Mapping[str, Any], upload: Upload | None,
    admit: Callable[[str], None] | None = None,
) -> Application:
    """Validate, store and commit one general-account registration; raises RegistrationRefused.
    ``admit(address)`` (mailflow.accounts.signups.admit_recipient) runs once every rule has passed and
    may refuse with SignupThrottled, answered 429 on the email field."""
    clean, stored = validate_registration(settings, fields, upload)
    if admit is not None:
        try:
            admit(clean["email"])
        except SignupThrottled as exc:
            documents.discard(stored)
            raise throttled(exc, "email") from None
    try:
        taken = taken_fields(session, clean["account"], clean["ubn"])
        if taken:
            raise RegistrationRefused(409, taken)
        application = _write_rows(session, settings, clean, stored)
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        documents.discard(stored)
        # Another submission won the race between our check and our insert: the same 409 as the check.
        raise RegistrationRefused(409, _conflict_errors(session, clean, exc)) from None
    except BaseException:
        session.rollback()
        documents.discard(stored)
        raise
    log.info("application %s submitted for account %s", application.id, clean["account"])
    return application


def _write_rows(
    session: Session, settings: Settings, clean: dict[str, str], stored: StoredDocument
) -> Application:
    submitted_at = now()
    account = Account(
        kind=AccountKind.GENERAL, account=clean["account"], account_key=clean["account"].lower(),
        name=clean["name"], mobile=clean["mobile"], email=clean["email"],
        email_key=addresses.key(clean["email"]),
        password_hash=hash_password(clean["password"]), status=AccountStatus.PENDING, created_at=submitted_at,
    )
    document = documents.add_document_row(session, stored)
    session.add(account)
    session.flush()
    application = Application(
        account_id=account.id, ubn=clean["ubn"], ubn_key=clean["ubn"], company_phone=clean["company_phone"],
        company_name=clean["company_name"], company_address=clean["company_address"],
        company_owner=clean["company_owner"], document_id=document.id, status=ApplicationStatus.SUBMITTED,
        submitted_at=submitted_at,
    )
    session.add(application)
    session.flush()
    queue_registration_received(session, settings, account, application)
    audit.record(session, f"applicant:{account.account}", "application.submitted", "application",
                 application.id, account=account.account, ubn=application.ubn, document_sha256=stored.sha256)
    emit_event(session, "application.submitted", account.id, application_data(application, account))
    return application


def _conflict_errors(session: Session, clean: dict[str, str], exc: IntegrityError) -> dict[str, str]:
    text = str(exc.orig).lower()
    errors: dict[str, str] = {}
    if "account_key" in text:
        errors["account"] = message("account_taken")
    if "ubn_key" in text:
        errors["ubn"] = message("ubn_taken")
    # Drivers word constraint errors differently; the committed rows are the authority.
    errors = errors or taken_fields(session, clean["account"], clean["ubn"])
    return errors or {"account": message("account_taken")}
