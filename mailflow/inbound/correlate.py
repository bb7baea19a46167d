"""Which record a received mail answers: the outbox mail of ours it is about, and whether that is proven.

Correlation to our outbox row, strongest first: the signed return-path tag (bounce+TAG@bounce_domain),
the Message-ID of our mail quoted in the bounce or named in In-Reply-To/References, then the address the
bounce names and the latest mail sent to it before the bounce arrived. A tag at our bounce domain that does
not verify marks the mail forged; a forged mail is recorded and changes nothing else. A bounce we cannot tie
to a mail we sent changes nothing either (anyone can write to the bounce address).

Only the first two are proof: the tag is signed, and our Message-IDs are 128 random bits that only the
mail's recipients and their servers have seen. A bounce or complaint matched by address alone could have
been written by anyone who knows an applicant's address, so it never stops mail or flags an account: it
is recorded, linked, and (when it says the mailbox is gone) shown to customer service to judge. The rule
is carried by `Match.proven`; what each result changes is `mailflow.inbound.consequences`.

Everything here only reads, in the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailflow.config import Settings
from mailflow.inbound.analysis import Analysis
from mailflow.mail.returnpath import parse_tag
from mailflow.mail.suppression import address_key
from mailflow.models import InboundMessage, OutboxMessage


@dataclass(frozen=True)
class TagCheck:
    """What the return-path tags a mail carries say: the mail of ours they name (a verified tag), and
    whether a tag at our bounce domain failed to verify with none verifying (forged)."""

    outbox: OutboxMessage | None
    forged: bool


@dataclass(frozen=True)
class Match:
    """The mail of ours a failed recipient is about, and whether the bounce proved it (see the module
    docstring): only a proven match may stop mail to an address."""

    mail: OutboxMessage | None
    proven: bool


def tag_candidates(row: InboundMessage, analysis: Analysis, domain: str) -> list[str]:
    """The bounce+…@``domain`` addresses the mail was delivered to or returns, each once."""
    found: list[str] = []
    for address in [*row.envelope_to.split(","), analysis.returned_return_path]:
        address = address.strip().strip("<>").lower()
        if address.startswith("bounce+") and address.endswith("@" + domain) and address not in found:
            found.append(address)
    return found


def check_tag(settings: Settings, session: Session, row: InboundMessage, analysis: Analysis) -> TagCheck:
    candidates = tag_candidates(row, analysis, settings.mail.bounce_domain.lower())
    verified = False
    for address in candidates:
        try:
            outbox_id, valid = parse_tag(settings, address)
        except Exception:
            outbox_id, valid = None, False
        if not valid:
            continue
        verified = True
        outbox = session.get(OutboxMessage, outbox_id) if outbox_id is not None else None
        if outbox is not None:
            return TagCheck(outbox, False)
    return TagCheck(None, bool(candidates) and not verified)


def by_message_id(session: Session, ids: list[str]) -> OutboxMessage | None:
    """Our mail with the first of ``ids`` (with or without angle brackets) that names one."""
    wanted = [f"<{i.strip().strip('<>')}>" for i in ids if i and i.strip().strip("<>")]
    if not wanted:
        return None
    found = {m.message_id: m for m in session.execute(
        select(OutboxMessage).where(OutboxMessage.message_id.in_(wanted))).scalars()}
    return next((found[i] for i in wanted if i in found), None)


def latest_sent_to(session: Session, address: str, row: InboundMessage) -> OutboxMessage | None:
    """The latest mail sent to ``address`` before ``row`` arrived: a guess, never proof."""
    key = address_key(address)
    if not key:
        return None
    return session.execute(
        select(OutboxMessage)
        .where(OutboxMessage.to_key == key, OutboxMessage.sent_at.is_not(None),
               OutboxMessage.sent_at <= row.received_at)
        .order_by(OutboxMessage.sent_at.desc(), OutboxMessage.id.desc()).limit(1)
    ).scalar_one_or_none()


def returned_mail(session: Session, analysis: Analysis, tagged: OutboxMessage | None) -> OutboxMessage | None:
    """The mail of ours a bounce, complaint or auto-reply returns, by tag then Message-ID (both proof)."""
    if tagged is not None:
        return tagged
    return by_message_id(session, [analysis.returned_message_id, *analysis.in_reply_to])


def mail_for_recipient(session: Session, row: InboundMessage, returned: OutboxMessage | None,
                       address: str, only_one: bool) -> Match:
    # A one-recipient bounce of a known mail is about that mail even when the failing address differs
    # (the applicant's mailbox forwarded it on); the applicant's address is the one we act on.
    if returned is not None and (only_one or returned.to_key == address_key(address)):
        return Match(returned, True)
    return Match(latest_sent_to(session, address, row), False)
