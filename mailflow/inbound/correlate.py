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

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, or_, select
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


def _angled(ids: Iterable[str]) -> list[str]:
    return [f"<{i.strip().strip('<>')}>" for i in ids if i and i.strip().strip("<>")]


def by_message_id(session: Session, ids: list[str]) -> OutboxMessage | None:
    """Our mail with the first of ``ids`` (with or without angle brackets) that names one."""
    wanted = _angled(ids)
    if not wanted:
        return None
    known: dict[str, OutboxMessage | None] = session.info.get(_PREFETCHED, {})
    if all(i in known for i in wanted):  # looked up for the whole batch already (prefetch)
        return next((mail for mail in (known[i] for i in wanted) if mail is not None), None)
    with session.no_autoflush:  # our sent mails, which nothing here changes: no flush needed first
        found = {m.message_id: m for m in session.execute(
            select(OutboxMessage).where(OutboxMessage.message_id.in_(wanted))).scalars()}
    return next((found[i] for i in wanted if i in found), None)


_PREFETCHED = "correlate.outbox_by_message_id"


def prefetch(settings: Settings, session: Session, mails: Iterable[tuple[InboundMessage, Analysis]]) -> None:
    """Load in one query the mails of ours that a batch of received mails names by verified return-path
    tag or by Message-ID, so check_tag and by_message_id find them in the session instead of asking the
    database once or twice per mail. Only a cache: whatever it misses is looked up as before."""
    ids: set[int] = set()
    message_ids: set[str] = set()
    domain = settings.mail.bounce_domain.lower()
    mails = list(mails)
    _prefetch_latest(session, mails)
    for row, analysis in mails:
        for address in tag_candidates(row, analysis, domain):
            with contextlib.suppress(Exception):
                outbox_id, valid = parse_tag(settings, address)
                if valid and outbox_id is not None:
                    ids.add(outbox_id)
        message_ids.update(_angled([analysis.returned_message_id, *analysis.in_reply_to]))
    if not ids and not message_ids:
        return
    with session.no_autoflush:
        found = session.execute(select(OutboxMessage).where(
            or_(OutboxMessage.id.in_(ids), OutboxMessage.message_id.in_(message_ids)))).scalars().all()
    known: dict[str, OutboxMessage | None] = dict.fromkeys(message_ids)
    known.update((mail.message_id, mail) for mail in found if mail.message_id in message_ids)
    session.info[_PREFETCHED] = known


_LATEST = "correlate.latest_sent_to"


def _prefetch_latest(session: Session, mails: list[tuple[InboundMessage, Analysis]]) -> None:
    """The latest mail sent to each address a batch names as failed (or, for an auto-reply, writes
    from) before the batch's last mail arrived, in one query; latest_sent_to uses it for a mail of the
    batch when that mail was sent before the mail in question arrived too (it then is the latest for
    it as well), and asks the database otherwise."""
    keys = {address_key(r.address) for _, analysis in mails for r in analysis.recipients}
    keys.update(address_key(analysis.from_address) for _, analysis in mails if analysis.kind == "autoreply")
    keys.discard("")
    if not keys:
        return
    until = max(row.received_at for row, _ in mails)
    ranked = (select(OutboxMessage.id, func.row_number().over(
        partition_by=OutboxMessage.to_key, order_by=(OutboxMessage.sent_at.desc(), OutboxMessage.id.desc())
    ).label("rank")).where(OutboxMessage.to_key.in_(keys), OutboxMessage.sent_at.is_not(None),
                           OutboxMessage.sent_at <= until).subquery())
    with session.no_autoflush:
        latest = session.execute(select(OutboxMessage).join(ranked, ranked.c.id == OutboxMessage.id)
                                 .where(ranked.c.rank == 1)).scalars().all()
    known: dict[str, OutboxMessage | None] = dict.fromkeys(keys)
    known.update((mail.to_key, mail) for mail in latest)
    session.info[_LATEST] = (until, known)


def latest_sent_to(session: Session, address: str, row: InboundMessage) -> OutboxMessage | None:
    """The latest mail sent to ``address`` before ``row`` arrived: a guess, never proof."""
    key = address_key(address)
    if not key:
        return None
    until, known = session.info.get(_LATEST, (None, {}))
    if key in known and until is not None and row.received_at <= until:
        mail = known[key]
        if mail is None or (mail.sent_at is not None and mail.sent_at <= row.received_at):
            return mail
    with session.no_autoflush:  # when our mails were sent: nothing here changes that
        return _latest_sent_to(session, key, row)


def _latest_sent_to(session: Session, key: str, row: InboundMessage) -> OutboxMessage | None:
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
