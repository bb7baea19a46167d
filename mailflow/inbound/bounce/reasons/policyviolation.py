"""`policyviolation`: the receiving organisation's policy refuses the mail (attachments, lists, local
rules).
"""

from __future__ import annotations

from mailflow.inbound.bounce.reasons.entry import Reason

REASON = Reason(
    name="policyviolation",
    documented=(
        (
            "has a policy that prohibited the mail",
            "Gmail SMTP errors, 550 5.7.1 ('... has a policy that prohibited the mail that you sent')",
        ),
        (
            "message not accepted for policy reasons",
            "Yahoo SMTP error codes: '554 5.7.9 Message not accepted for policy reasons'",
        ),
    ),
    phrases=(
        "header error",
        "denied by policy",
        "an illegal attachment on your message",
        "because the recipient is not accepting mail with attachments",
        "because the recipient is not accepting mail with embedded images",
        "by the end-user's policy",
        "contains prohibited",
        "email not accepted for policy reasons",
        "email rejected due to security policies",
        "message bounced due to organizational settings",
        "message given low priority",
        "message rejected due to local policy",
        "rejected for policy reasons",
        "protocol violation",
        "the email address used to send your message is not subscribed to this group",
        "the message was rejected by organization policy",
        "this message was blocked because its content presents a potential",
        "we do not accept messages containing images or other attachments",
        "you're using a mass mailer",
        "local policy",
        "violates our policy",
        "violation of policy",
        "policy reasons",
        "organization policy",
        "due to policy",
    ),
)
