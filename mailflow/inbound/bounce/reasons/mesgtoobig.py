"""`mesgtoobig`: the message is larger than the receiving system takes (RFC 3463 x.3.4)."""

from __future__ import annotations

from mailflow.inbound.bounce.reasons.entry import Reason

REASON = Reason(
    name="mesgtoobig",
    codes=("4.7.16", "5.3.4", "5.7.16"),
    documented=(
        ("message size exceeds fixed limit", "Postfix smtpd: '552 5.3.4 Message size exceeds fixed limit'"),
        (
            "message size exceeds fixed maximum message size",
            "sendmail: '552 5.2.3 Message size exceeds fixed maximum message size'",
        ),
        ("exceeds size limit", "Postfix smtp(8): 'message size ... exceeds size limit ... of server ...'"),
        ("message too big for system", "RFC 3463 X.3.4 'Message too big for system'"),
        (
            "message too large",
            "Exchange 2007+ NDR '550 5.2.3 RESOLVER.RST.RecipSizeLimit; message too large for this "
            "recipient' (Microsoft KB 960775); Exchange Online 5.2.12 '... message too large for this "
            "organization'",
        ),
    ),
    phrases=(
        "maximum incoming message size",
        "exceeded maximum inbound message size",
        "line limit exceeded",
        "max message size exceeded",
        "message file too big",
        "message length exceeds administrative limit",
        "message size exceeds maximum value",
        "message too big",
        "size limit exceeded",
        "taille limite du message atteinte",
        "the message you sent was too big",
        "message is too large",
        "message exceeds maximum size",
        "email is too large",
    ),
)
