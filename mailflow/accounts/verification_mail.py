"""The verification mail and the /verify link it carries: a fresh verify-email token bound to the account's
current address, queued in the caller's transaction.

Apart from mailflow.accounts.verification (completing a link) because the modules that queue this mail or
build a /verify link — shared sign-up, self-service's Email change, review, reminders, support — are
themselves called by the completion (a binding is confirmed, an Email change completed there): kept in
verification.py, every one of them would import in a cycle."""

from __future__ import annotations

from sqlalchemy.orm import Session

from mailflow.accounts.tokens import issue_token
from mailflow.config import Settings
from mailflow.mail.catalog import VERIFICATION_TEMPLATES
from mailflow.mail.queue import VERIFICATION_QUEUES
from mailflow.models import Account, OutboxMessage, TokenPurpose, VerificationToken


def verify_url(settings: Settings, token: str) -> str:
    return f"{settings.http.base_url.rstrip('/')}/verify/{token}"


def link_context(settings: Settings, token: str, row: VerificationToken) -> dict[str, str]:
    """The link keys of a verification mail's context."""
    return {"verify_url": verify_url(settings, token), "expires_at": row.expires_at.isoformat()}


def send_verification_mail(
    session: Session, settings: Settings, account: Account, template: str
) -> OutboxMessage:
    """Issue a verify-email token bound to the account's current address (voiding older ones) and queue
    ``template`` (account-approved or verify-reminder) with its link, in the caller's transaction."""
    if template not in VERIFICATION_TEMPLATES:
        raise ValueError(f"not a verification mail template: {template!r}")
    token, row = issue_token(session, settings, account, TokenPurpose.VERIFY_EMAIL, account.email)
    return VERIFICATION_QUEUES[template](session, settings, account, verify_url(settings, token), row)
