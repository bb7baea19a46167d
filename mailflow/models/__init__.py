"""All tables. Import from here: ``from mailflow.models import Account, OutboxMessage``."""

from mailflow.models.accounts import (
    Account,
    AccountKind,
    AccountStatus,
    Application,
    ApplicationStatus,
    Binding,
    BindingStatus,
    Document,
    DocumentChunk,
    DocumentStore,
    TokenPurpose,
    VerificationToken,
)
from mailflow.models.base import Base, utcnow
from mailflow.models.inbound import BounceRecipient, ImapCursor, InboundMessage, InboundStatus
from mailflow.models.mail import (
    AddressHealth,
    CapturedMail,
    OutboxEvent,
    OutboxMessage,
    OutboxStatus,
    Suppression,
)
from mailflow.models.notify import (
    ApiKey,
    ApiKeyUse,
    ApiScope,
    Event,
    EventSequence,
    Notification,
    WebhookSubscriber,
)
from mailflow.models.ops import (
    AuditEvent,
    JobLease,
    RateCounter,
    StaffRole,
    StaffUser,
    SupportItem,
    SupportKind,
    SupportNote,
)

__all__ = [
    "Account", "AccountKind", "AccountStatus", "AddressHealth", "ApiKey", "ApiKeyUse", "ApiScope",
    "Application", "ApplicationStatus", "AuditEvent", "Event", "EventSequence", "Notification",
    "WebhookSubscriber", "Base", "Binding", "BindingStatus", "BounceRecipient", "CapturedMail", "Document",
    "DocumentChunk", "DocumentStore",
    "ImapCursor", "InboundMessage", "InboundStatus", "JobLease", "OutboxEvent",
    "OutboxMessage", "OutboxStatus", "RateCounter", "StaffRole", "StaffUser", "Suppression", "SupportItem",
    "SupportKind", "SupportNote", "TokenPurpose", "VerificationToken", "utcnow",
]
