"""The context each catalogued mail's templates read (mailflow.mail.catalog names the mails): one TypedDict
per mail, built by its queue_<mail> function (mailflow.mail.queue) and by `mailflow preview`'s sample
(mailflow.mail.render.sample_context); tests/mail/test_contexts.py checks every sample has exactly its
mail's keys. The pass system's API mails (pass-issued, pass-expiring) are not here: their keys come from
their templates' meta.toml (mailflow.notify.templates)."""

from __future__ import annotations

from typing import Any, TypedDict


class AccountLinks(TypedDict):
    """Where a holder signs in or recovers the password (the self-service mails' footer)."""
    login_url: str
    forgot_url: str


class RegistrationReceived(TypedDict):
    name: str
    account: str
    company_name: str
    ubn: str
    submitted_at: str


class VerificationMail(TypedDict):
    """account-approved and verify-reminder: the same link mail, its wording by ``kind`` (a shared
    account was never reviewed)."""
    name: str
    account: str
    kind: str
    verify_url: str
    expires_at: str


class AccountRejected(TypedDict):
    name: str
    account: str
    company_name: str
    ubn: str
    reasons: list[str]
    register_url: str


class DocumentApproved(TypedDict):
    name: str
    company_name: str
    ubn: str
    note: str
    system_url: str


class DocumentRejected(TypedDict):
    name: str
    company_name: str
    ubn: str
    reasons: list[str]


class BindingRequest(TypedDict):
    general_name: str
    general_account: str
    company_name: str
    ubn: str
    shared_name: str
    shared_account: str
    confirm_url: str
    expires_at: str


class BindingEnded(TypedDict):
    recipient_name: str
    ended_by: str
    shared_name: str
    shared_account: str
    general_name: str
    general_account: str
    company_name: str
    ubn: str
    ended_at: str


class SupportDigest(TypedDict):
    day: str
    counts_day: str
    counts: dict[str, int]
    count_labels: dict[str, str]
    open_by_kind: list[dict[str, Any]]
    items: list[dict[str, Any]]
    items_shown: int
    items_total: int
    dashboard_url: str


class PasswordReset(TypedDict):
    name: str
    account: str
    reset_url: str
    expires_at: str


class PasswordChanged(AccountLinks):
    name: str
    account: str
    via: str
    changed_at: str


class AccountReminder(AccountLinks):
    accounts: list[dict[str, Any]]


class EmailChange(TypedDict):
    name: str
    account: str
    old_address: str
    verify_url: str
    expires_at: str


class EmailChanged(AccountLinks):
    name: str
    account: str
    new_address: str
    changed_at: str


# Every catalogued mail's context type (tests/mail/test_contexts.py: one per mail of the catalogue that is
# not an API mail).
CONTEXTS: dict[str, type] = {
    "registration-received": RegistrationReceived,
    "account-approved": VerificationMail,
    "account-rejected": AccountRejected,
    "document-approved": DocumentApproved,
    "document-rejected": DocumentRejected,
    "verify-reminder": VerificationMail,
    "binding-request": BindingRequest,
    "support-digest": SupportDigest,
    "binding-ended": BindingEnded,
    "password-reset": PasswordReset,
    "password-changed": PasswordChanged,
    "account-reminder": AccountReminder,
    "email-change": EmailChange,
    "email-changed": EmailChanged,
}
