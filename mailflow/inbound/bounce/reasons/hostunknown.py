"""`hostunknown`: the recipient's domain does not exist (RFC 3463 x.1.2).

Permanent; a DNS failure that will be retried is a `networkerror` instead.
"""

from __future__ import annotations

from mailflow.inbound.bounce.reasons.entry import Reason
from mailflow.inbound.bounce.reasons.facts import Facts


def rule(f: Facts) -> bool | None:
    # a DNS failure that will be retried is a network problem, not a missing domain: a temporary
    # code, or the resolver's TRY_AGAIN in Postfix's words ("Host not found, try again")
    return False if f.temporary or "not found, try again" in f.low else None


REASON = Reason(
    name="hostunknown",
    codes=("5.1.2",),
    documented=(
        (
            "find the recipient domain",
            "Gmail SMTP errors, 553 5.1.2 ('We weren't able to find the recipient domain')",
        ),
        (
            "host or domain name not found",
            "Postfix dns_lookup: 'Host or domain name not found. Name service error for ...'",
        ),
        ("host unknown", "sendmail: '550 5.1.2 Host unknown (Name server: ...: host not found)'"),
        ("unrouteable address", "Exim routers: 'Unrouteable address'"),
        ("all relevant mx records point to non-existent hosts", "Exim dnslookup router"),
        ("all host address lookups failed permanently", "Exim smtp transport"),
        (
            "couldn't find any host named",
            "qmail 1.03 qmail-remote: 'Sorry, I couldn't find any host named ... (#5.1.2)'",
        ),
        ("bad destination system address", "RFC 3463 X.1.2 'Bad destination system address'"),
        ("unknown host", "smail / sendmail V5: '... unknown host'"),
    ),
    phrases=(
        "domain does not exist",
        "domain is not reachable",
        "domain must exist",
        "domain name not found",
        "domain not found",
        "host unreachable",
        "mail domain mentioned in email address is unknown",
        "name or service not known",
        "no such domain",
        "recipient address rejected: unknown domain name",
        "recipient domain must exist",
        "the account or domain may not exist",
        "unroutable address",
        "unknown domain",
        "no mx record",
        "host not found",
        "domain name is not valid",
        "mx records point to non-existent hosts",
        "name server: .: host not found",
    ),
    pairs=(
        ("domain ", " not exist"),
        ("host ", " not found"),
    ),
    rule=rule,
    hard=True,
)
