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
)
