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
)
