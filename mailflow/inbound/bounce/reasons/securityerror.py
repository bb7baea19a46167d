"""`securityerror`: a security requirement failed: authentication, encryption, x.7 codes without a better
reason.
"""

from __future__ import annotations

from mailflow.inbound.bounce.reasons.entry import Reason

REASON = Reason(
    name="securityerror",
    codes=(
        "4.7.5",
        "4.7.6",
        "4.7.7",
        "4.7.12",
        "4.7.15",
        "5.7.0",
        "5.7.1",
        "5.7.2",
        "5.7.3",
        "5.7.4",
        "5.7.5",
        "5.7.6",
        "5.7.7",
        "5.7.8",
        "5.7.9",
        "5.7.10",
        "5.7.11",
        "5.7.12",
        "5.7.14",
        "5.7.15",
        "5.7.19",
    ),
    documented=(
        ("smtp authentication", "RFC 4954, SMTP Service Extension for Authentication"),
        ("authentication required", "RFC 4954 reply 530 5.7.0 'Authentication required'"),
        (
            "must issue a starttls command first",
            "RFC 3207 / Postfix smtpd: '530 5.7.0 Must issue a STARTTLS command first'",
        ),
        (
            "encryption required",
            "RFC 4954 reply 538 5.7.11 'Encryption required for requested authentication ...'",
        ),
        (
            "required authentication level",
            "Exchange Online NDR 5.7.515: '... doesn't meet the required authentication level'",
        ),
    ),
    phrases=(
        "unauthenticated senders",
        "authentication failed; server ",
        "authentication turned on in your email client",
        "authorization failure",
        "ciphertext too long",
        "could not authenticate",
        "negotiation failed",
        "sorry, you don't authenticate or the domain isn't in my list of allowed rcpthosts",
        "starttls is required",
        "tls required",
        "user not authenticated",
        "authentication is required",
        "account is not authorized",
        "must be authenticated",
    ),
    words=("insecure",),
)
