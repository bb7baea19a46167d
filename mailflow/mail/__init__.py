"""Outgoing mail: templates, rendering, the outbox, dispatch, return paths, the capture mailbox."""

TEMPLATE_NAMES = (
    "registration-received",
    "account-approved",
    "account-rejected",
    "document-approved",
    "document-rejected",
    "verify-reminder",
    "binding-request",
    "support-digest",
    "binding-ended",  # notice to the other side when a shared-account binding is ended (issue 7)
    # Self-service by mail (issue 14): recovery and changes the holder makes.
    "password-reset",
    "password-changed",
    "account-reminder",
    "email-change",
    "email-changed",
    # Sent for the pass system through POST /api/v1/notifications (templates/<name>/meta.toml).
    "pass-issued",
    "pass-expiring",
)
