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
    phrases=(
        "unauthenticated senders",
        "smtp authentication",
        "required authentication level",
        "authentication failed; server ",
        "authentication turned on in your email client",
        "authentication required",
        "authorization failure",
        "ciphertext too long",
        "could not authenticate",
        "encryption required",
        "must issue a starttls command first",
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
