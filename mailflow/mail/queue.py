"""One queue_<mail> function per catalogued mail (mailflow.mail.catalog; Warehouse's send_*_email is the
model): it builds the mail's typed context (mailflow.mail.contexts) from the rows it concerns and adds the
mail to the outbox in the caller's transaction (mailflow.mail.outbox.enqueue), with the Message-ID domain
of the settings. Every catalogued mail is queued through here; a mail's one-time link comes in made (the
caller issued its token), so the link's form stays with the code that completes it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from mailflow.accounts.signups import addressee
from mailflow.config import Settings
from mailflow.mail.contexts import (
    AccountLinks,
    AccountRejected,
    AccountReminder,
    BindingEnded,
    BindingRequest,
    DocumentApproved,
    DocumentRejected,
    EmailChange,
    EmailChanged,
    PasswordChanged,
    PasswordReset,
    RegistrationReceived,
    SupportDigest,
    VerificationMail,
)
from mailflow.mail.outbox import enqueue
from mailflow.models import Account, Application, OutboxMessage, VerificationToken

if TYPE_CHECKING:
    from mailflow.accounts.shared import Company


def _queue(session: Session, settings: Settings, template: str, to_address: str, context: Mapping[str, Any],
           **row: Any) -> OutboxMessage:
    return enqueue(session, template, to_address, message_id_domain=settings.mail.message_id_domain,
                   context=dict(context), **row)


def _base(settings: Settings) -> str:
    return settings.http.base_url.rstrip("/")


def account_links(settings: Settings) -> AccountLinks:
    """Where the holder signs in and recovers the password (the self-service mails)."""
    base = _base(settings)
    return AccountLinks(login_url=f"{base}/account", forgot_url=f"{base}/password/forgot")


# --- registration and review ----------------------------------------------------------------------------


def queue_registration_received(session: Session, settings: Settings, account: Account,
                                application: Application) -> OutboxMessage:
    context = RegistrationReceived(name=account.name, account=account.account,
                                   company_name=application.company_name, ubn=application.ubn,
                                   submitted_at=application.submitted_at.isoformat())
    return _queue(session, settings, "registration-received", account.email, context,
                  to_name=addressee(account), account_id=account.id, application_id=application.id)


def _verification(session: Session, settings: Settings, template: str, account: Account, link: str,
                  row: VerificationToken) -> OutboxMessage:
    # kind: a shared account (共用帳號) was never reviewed, so its mails have their own subject and wording.
    context = VerificationMail(name=account.name, account=account.account, kind=account.kind, verify_url=link,
                               expires_at=row.expires_at.isoformat())
    return _queue(session, settings, template, account.email, context, to_name=addressee(account),
                  account_id=account.id, token_id=row.id)


def queue_account_approved(session: Session, settings: Settings, account: Account, link: str,
                           row: VerificationToken) -> OutboxMessage:
    return _verification(session, settings, "account-approved", account, link, row)


def queue_verify_reminder(session: Session, settings: Settings, account: Account, link: str,
                          row: VerificationToken) -> OutboxMessage:
    return _verification(session, settings, "verify-reminder", account, link, row)


# The verification mails by name (mailflow.accounts.verification_mail picks one).
QueueVerification = Callable[[Session, Settings, Account, str, VerificationToken], OutboxMessage]
VERIFICATION_QUEUES: dict[str, QueueVerification] = {
    "account-approved": queue_account_approved,
    "verify-reminder": queue_verify_reminder,
}


def queue_document_approved(session: Session, settings: Settings, account: Account, application: Application,
                            note: str) -> OutboxMessage:
    context = DocumentApproved(name=account.name, company_name=application.company_name, ubn=application.ubn,
                               note=note or "無", system_url=settings.mail.pass_system_url)
    return _queue(session, settings, "document-approved", account.email, context, to_name=account.name,
                  account_id=account.id, application_id=application.id)


def queue_account_rejected(session: Session, settings: Settings, account: Account, application: Application,
                           reasons: list[str]) -> OutboxMessage:
    context = AccountRejected(name=account.name, account=account.account,
                              company_name=application.company_name, ubn=application.ubn, reasons=reasons,
                              register_url=f"{_base(settings)}/register")
    return _queue(session, settings, "account-rejected", account.email, context, to_name=account.name,
                  account_id=account.id, application_id=application.id)


def queue_document_rejected(session: Session, settings: Settings, account: Account, application: Application,
                            reasons: list[str]) -> OutboxMessage:
    context = DocumentRejected(name=account.name, company_name=application.company_name, ubn=application.ubn,
                               reasons=reasons)
    return _queue(session, settings, "document-rejected", account.email, context, to_name=account.name,
                  account_id=account.id, application_id=application.id)


# --- shared-account bindings ----------------------------------------------------------------------------


def queue_binding_request(session: Session, settings: Settings, general: Account, shared: Account,
                          company: Company | None, address: str, link: str,
                          row: VerificationToken) -> OutboxMessage:
    context = BindingRequest(general_name=general.name, general_account=general.account,
                             company_name=company.name if company else "", ubn=company.ubn if company else "",
                             shared_name=shared.name, shared_account=shared.account, confirm_url=link,
                             expires_at=row.expires_at.isoformat())
    return _queue(session, settings, "binding-request", address, context, to_name=general.name,
                  account_id=general.id, token_id=row.id)


def queue_binding_ended(session: Session, settings: Settings, recipient: Account, *, general: Account,
                        shared: Account, company: Company | None, ended_by: str,
                        ended_at: datetime) -> OutboxMessage:
    context = BindingEnded(recipient_name=recipient.name, ended_by=ended_by, shared_name=shared.name,
                           shared_account=shared.account, general_name=general.name,
                           general_account=general.account, company_name=company.name if company else "",
                           ubn=company.ubn if company else "", ended_at=ended_at.isoformat())
    return _queue(session, settings, "binding-ended", recipient.email, context, to_name=recipient.name,
                  account_id=recipient.id)


# --- customer service -----------------------------------------------------------------------------------


def queue_support_digest(session: Session, settings: Settings, context: SupportDigest) -> OutboxMessage:
    """The morning digest (mailflow.support.digest.build_digest) to mail.support_address."""
    return _queue(session, settings, "support-digest", settings.mail.support_address, context, to_name="客服")


def queue_copy(session: Session, settings: Settings, original: OutboxMessage,
               to_address: str) -> OutboxMessage:
    """Customer service's resend of a mail without a link or a list to renew: its stored context again,
    to ``to_address`` (the account's current address)."""
    return _queue(session, settings, original.template, to_address, original.context or {},
                  to_name=original.to_name, account_id=original.account_id,
                  application_id=original.application_id)


# --- self-service ---------------------------------------------------------------------------------------


def queue_password_reset(session: Session, settings: Settings, account: Account, link: str,
                         row: VerificationToken) -> OutboxMessage:
    context = PasswordReset(name=account.name, account=account.account, reset_url=link,
                            expires_at=row.expires_at.isoformat())
    return _queue(session, settings, "password-reset", account.email, context, to_name=account.name,
                  account_id=account.id, token_id=row.id)


def queue_password_changed(session: Session, settings: Settings, account: Account, via: str,
                           changed_at: datetime) -> OutboxMessage:
    context = PasswordChanged(name=account.name, account=account.account, via=via,
                              changed_at=changed_at.isoformat(), **account_links(settings))
    return _queue(session, settings, "password-changed", account.email, context, to_name=account.name,
                  account_id=account.id)


def queue_account_reminder(session: Session, settings: Settings, holder: Account,
                           accounts: list[dict[str, Any]]) -> OutboxMessage:
    """``accounts``: every account whose verified address is the holder's (帳號, kind, companies)."""
    context = AccountReminder(accounts=accounts, **account_links(settings))
    return _queue(session, settings, "account-reminder", holder.email, context, account_id=holder.id)


def queue_email_change(session: Session, settings: Settings, account: Account, address: str, masked_old: str,
                       link: str, row: VerificationToken) -> OutboxMessage:
    # No display name: the new address is not verified, and the name is only what the account holds.
    context = EmailChange(name=account.name, account=account.account, old_address=masked_old, verify_url=link,
                          expires_at=row.expires_at.isoformat())
    return _queue(session, settings, "email-change", address, context, account_id=account.id, token_id=row.id)


def queue_email_changed(session: Session, settings: Settings, account: Account, old_address: str,
                        masked_new: str, changed_at: datetime) -> OutboxMessage:
    context = EmailChanged(name=account.name, account=account.account, new_address=masked_new,
                           changed_at=changed_at.isoformat(), **account_links(settings))
    return _queue(session, settings, "email-changed", old_address, context, to_name=account.name,
                  account_id=account.id)
