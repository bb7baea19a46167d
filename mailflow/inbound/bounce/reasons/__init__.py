"""Bounce reasons in Sisimai's vocabulary: which one, and whether it is permanent.

One module per reason (`userunknown.py`, `filtered.py`, ...) holds what makes a bounce that reason:
the enhanced status codes that name it, its phrases, and its own rule where the default is not enough.
This module is only the order in which they are asked:

1. an explicit reason a detector already knows wins, unless it is one worth a better look (RETRY);
2. a provider's own documented codes (`bounce.remote`);
3. a first pass over the reasons, most specific first: each decides by its rule, else "the status
   code names me, or the diagnostic says me";
4. the code alone when it names a firm reason, then the softer reasons by text, then class-level
   fallbacks (x.6 content, x.7 security, X-Unix mailer, 50x syntax, delayed -> expired, HELO -> blocked);
5. `onhold` when there is a diagnostic nobody understood, else `undefined`.

Standards first: the enhanced status code (RFC 3463 class.subject.detail, the IANA registry) names the
reason whenever it is specific; a class-only code (x.0.0) names none. Phrases decide where the code is
missing or too broad (5.7.1 covers spam, relaying and policy alike) and veto where the code is known to
be used loosely (a "5.1.1" whose words say the mailbox is full). Tried alternatives to this order —
a specific code always winning, or winning before the softer phrases — agreed less with Sisimai on
both the whole corpus and leave-one-family-out (docs/BENCHMARKS.md).
"""

from __future__ import annotations

from collections.abc import Callable

from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.reasons.catalogue import FULL, current
from mailflow.inbound.bounce.reasons.entry import standing_alone as _standing_alone
from mailflow.inbound.bounce.reasons.facts import BEFORE_DATA, Facts
from mailflow.inbound.bounce.remote import remote_reason
from mailflow.inbound.bounce.vocabulary import BounceReason

__all__ = ["classify", "is_hard", "status_reason", "text_reason", "RETRY", "known_reasons"]

# Reasons whose guess a later, better look may replace.
RETRY = frozenset(
    {
        "undefined",
        "onhold",
        "systemerror",
        "securityerror",
        "expired",
        "networkerror",
        "hostunknown",
        "userunknown",
    }
)

FIRST_ORDER = (
    "mailboxfull",
    "mesgtoobig",
    "exceedlimit",
    "suspend",
    "hasmoved",
    "norelaying",
    "authfailure",
    "userunknown",
    "filtered",
    "requireptr",
    "notcompliantrfc",
    "badreputation",
    "contenterror",
    "rejected",
    "hostunknown",
    "spamdetected",
    "speeding",
    "toomanyconn",
    "blocked",
)
SECOND_ORDER = (
    "mailboxfull",
    "authfailure",
    "badreputation",
    "speeding",
    "spamdetected",
    "virusdetected",
    "policyviolation",
    "norelaying",
    "notaccept",
    "systemerror",
    "networkerror",
    "suspend",
    "contenterror",
    "systemfull",
    "notaccept",
    "expired",
    "securityerror",
    "mailererror",
)
# The order free text (a subject line, a notice sentence) is read in.
TEXT_ORDER = (
    "mailboxfull",
    "mesgtoobig",
    "exceedlimit",
    "suspend",
    "userunknown",
    "filtered",
    "rejected",
    "hostunknown",
    "spamdetected",
    "speeding",
    "toomanyconn",
    "blocked",
    "authfailure",
    "securityerror",
    "systemerror",
    "networkerror",
    "expired",
    "contenterror",
    "hasmoved",
    "systemfull",
    "notaccept",
    "mailererror",
    "norelaying",
    "syntaxerror",
)


def known_reasons() -> frozenset[str]:
    """Every reason the classifier can answer (for the zh-TW sentences customer service reads)."""
    return frozenset(FULL.reasons) | {BounceReason.UNDEFINED, BounceReason.ONHOLD}


def status_reason(status: str) -> str:
    """The reason an enhanced status code names ('' when it names none)."""
    return current().by_code.get(status, "")


def text_reason(text: str) -> str:
    """Best reason from text alone (subject lines, free text)."""
    low = text.lower()
    catalogue = current()
    return next((r for r in TEXT_ORDER if catalogue.says(r, low)), "")


def classify(hit: Hit) -> str:
    """The Sisimai-vocabulary reason for one recipient."""
    if hit.reason and hit.reason not in RETRY:
        return hit.reason
    provider = remote_reason(hit)
    if provider:
        return provider
    catalogue = current()
    facts = Facts(hit, catalogue, hit.diagnostic.lower(), catalogue.by_code.get(hit.status, ""))
    if not hit.diagnostic_type.startswith("X-UNIX"):
        for name in FIRST_ORDER:
            if _first_pass(name, facts):
                return name
    if hit.reason:
        return hit.reason
    return _fallback(facts)


def _first_pass(name: str, facts: Facts) -> bool:
    if facts.hit.reason == name:
        return True  # a detector's own guess stands when nothing more specific matched first
    entry = facts.catalogue.reasons[name]
    if entry.rule is not None:
        decided = entry.rule(facts)
        if decided is not None:
            return decided
    return facts.by_status == name or facts.says(name)


def _fallback(facts: Facts) -> str:
    hit, by_status = facts.hit, facts.by_status
    if by_status and by_status not in RETRY and hit.diagnostic_type in ("", "SMTP"):
        return by_status
    for name in SECOND_ORDER:
        if facts.says(name):
            return name
    if _policy_after_data(facts):
        return "policyviolation"
    if facts.says("hostunknown") and facts.temporary:
        return "networkerror"
    if "access denied" in facts.low:
        return "rejected"
    if by_status:
        return by_status
    if _rcpt_550(facts):
        return "userunknown"
    for check in _CLASS_FALLBACKS:
        found = check(facts)
        if found:
            return found
    return BounceReason.ONHOLD if facts.low.strip() else BounceReason.UNDEFINED


def _policy_after_data(facts: Facts) -> bool:
    """A command "rejected for policy reasons" (RFC 5321 4.2.3, reply 550): the message itself when
    said once the content was sent; before DATA only a plain 550 whose code names nothing else
    (a "550 5.7.0 ... Policy violation" stays with its x.7 code)."""
    if not _standing_alone(facts.low, "policy"):
        return False
    if facts.hit.command not in BEFORE_DATA:
        return True
    return facts.hit.reply_code == "550" and not facts.by_status


# RFC 5321 4.2.3: 550 "mailbox unavailable (e.g., mailbox not found, no access, or command rejected
# for policy reasons)": the last two are not an unknown mailbox.
_NOT_UNKNOWN_550 = ("policy", "access")


def _rcpt_550(facts: Facts) -> bool:
    """RFC 5321 3.3: "if the recipient is known not to be a deliverable address, the SMTP server
    returns a 550 reply" to RCPT: with no more specific code or words, that is an unknown mailbox."""
    hit = facts.hit
    if hit.command != "RCPT" or hit.reply_code != "550" or hit.status not in ("", "5.0.0"):
        return False
    return not any(word in facts.low for word in _NOT_UNKNOWN_550)


def _class_level(facts: Facts) -> str:
    head = facts.hit.status[:3]
    if head in ("5.6", "4.6"):
        return "contenterror"
    if head in ("5.7", "4.7"):
        return "securityerror"
    return ""


def _mailer(facts: Facts) -> str:
    return "mailererror" if facts.hit.diagnostic_type.upper().startswith("X-UNIX") else ""


def _syntax(facts: Facts) -> str:
    if facts.hit.reply_code in ("500", "501", "502", "503", "504") or facts.says("syntaxerror"):
        return "syntaxerror"
    return ""


def _delayed(facts: Facts) -> str:
    return "expired" if facts.hit.action in ("delayed", "expired") else ""


def _helo(facts: Facts) -> str:
    return "blocked" if facts.hit.command in ("HELO", "EHLO") else ""


_CLASS_FALLBACKS: tuple[Callable[[Facts], str], ...] = (_class_level, _mailer, _syntax, _delayed, _helo)


def is_hard(reason: str, status: str, reply_code: str, action: str = "failed") -> bool:
    """Sisimai's hard/soft split: address-level reasons are permanent.

    "notaccept" (null MX, no SMTP service) is permanent unless the status code is temporary.
    """
    entry = FULL.reasons.get(reason)
    if entry is None:
        return False
    if reason == "notaccept":
        return not status.startswith("4")
    return entry.hard
