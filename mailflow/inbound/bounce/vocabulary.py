"""The bounce reasons mailflow can answer, as one StrEnum: Sisimai's vocabulary (the contract's
`reason`), so stored values and `mailflow bounce parse` output stay those strings.

The classifier's reasons (one module each under reasons/) are members, and so are the answers that come
from elsewhere: `undefined` and `onhold` (the classifier's fallbacks), `feedback` (a complaint),
`vacation` (an auto-reply), `delivered` (a DSN that reports delivery) and `suppressed` (our own list).
tests/inbound/test_vocabulary.py holds the catalogue and the zh-TW sentences customer service reads
(mailflow.support.reasons_zh) to it: a reason added to one and not the others fails there."""

from __future__ import annotations

from enum import StrEnum


class BounceReason(StrEnum):
    AUTHFAILURE = "authfailure"
    BADREPUTATION = "badreputation"
    BLOCKED = "blocked"
    CONTENTERROR = "contenterror"
    DELIVERED = "delivered"
    EXCEEDLIMIT = "exceedlimit"
    EXPIRED = "expired"
    FAILEDSTARTTLS = "failedstarttls"
    FEEDBACK = "feedback"
    FILTERED = "filtered"
    HASMOVED = "hasmoved"
    HOSTUNKNOWN = "hostunknown"
    MAILBOXFULL = "mailboxfull"
    MAILERERROR = "mailererror"
    MESGTOOBIG = "mesgtoobig"
    NETWORKERROR = "networkerror"
    NORELAYING = "norelaying"
    NOTACCEPT = "notaccept"
    NOTCOMPLIANTRFC = "notcompliantrfc"
    ONHOLD = "onhold"
    POLICYVIOLATION = "policyviolation"
    REJECTED = "rejected"
    REQUIREPTR = "requireptr"
    SECURITYERROR = "securityerror"
    SPAMDETECTED = "spamdetected"
    SPEEDING = "speeding"
    SUPPRESSED = "suppressed"
    SUSPEND = "suspend"
    SYNTAXERROR = "syntaxerror"
    SYSTEMERROR = "systemerror"
    SYSTEMFULL = "systemfull"
    TOOMANYCONN = "toomanyconn"
    UNDEFINED = "undefined"
    USERUNKNOWN = "userunknown"
    VACATION = "vacation"
    VIRUSDETECTED = "virusdetected"
