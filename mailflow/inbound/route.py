"""What a received mail changes: the step after `store` and `analysis`.

`process(ctx, inbound_id)` reads one stored mail, understands it (mailflow.inbound.analysis), finds the
outbox mail it answers, acts on it and marks it processed or quarantined, all in one transaction: the
consequences happen exactly once or not at all. It never raises: a failure quarantines the mail with the
reason, so no single mail can stop a poller.

Correlation to our outbox row, strongest first: the signed return-path tag (bounce+TAG@bounce_domain),
the Message-ID of our mail quoted in the bounce or named in In-Reply-To/References, then the address the
bounce names and the latest mail sent to it before the bounce arrived. A tag at our bounce domain that does
not verify marks the mail forged; a forged mail is recorded and changes nothing else. A bounce we cannot tie
to a mail we sent changes nothing either (anyone can write to the bounce address).

Only the first two are proof: the tag is signed, and our Message-IDs are 128 random bits that only the
mail's recipients and their servers have seen. A bounce or complaint matched by address alone could have
been written by anyone who knows an applicant's address, so it never stops mail or flags an account: it
is recorded, linked, and (when it says the mailbox is gone) shown to customer service to judge.

Consequences: see `_on_bounce`, `_on_complaint`, `_on_autoreply`, `_on_reply`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mailflow import audit
from mailflow.context import AppContext
from mailflow.inbound import sender_auth
from mailflow.inbound.analysis import Analysis, FailedRecipient, analyze
from mailflow.inbound.sender_auth import SenderAuth
from mailflow.mail.returnpath import parse_tag
from mailflow.mail.suppression import SOFT_BOUNCE_LIMIT, address_key, record_soft_bounce, suppress
from mailflow.models import (
    Account,
    Application,
    BounceRecipient,
    InboundMessage,
    InboundStatus,
    OutboxMessage,
    SupportKind,
    SupportNote,
)
from mailflow.notify.notifications import bounce_seen
from mailflow.support.items import account_by_address, note_autoreply, open_item
from mailflow.support.reasons_zh import sender_auth_label
from mailflow.timeutil import now

log = logging.getLogger(__name__)

ACTOR = "system"
VERIFICATION_TEMPLATES = ("account-approved", "verify-reminder")
SUMMARY_LIMIT = 4000


# --- the entry points ----------------------------------------------------------------------


def process(ctx: AppContext, inbound_id: int) -> str:
    """Understand and act on stored mail ``inbound_id``; returns its final status. Never raises."""
    try:
        return _process(ctx, inbound_id)
    except Exception as exc:
        log.exception("inbound %s: processing failed, quarantining", inbound_id)
        return _quarantine(ctx, inbound_id, f"processing failed: {type(exc).__name__}: {exc}"[:1000])


def process_pending(ctx: AppContext, limit: int = 500) -> int:
    """Process mails stored but never processed (a crash between storing and processing)."""
    with ctx.db.session() as session:
        ids = session.execute(
            select(InboundMessage.id).where(InboundMessage.status == InboundStatus.STORED)
            .order_by(InboundMessage.id).limit(limit)
        ).scalars().all()
    for inbound_id in ids:
        process(ctx, inbound_id)
    return len(ids)


def _quarantine(ctx: AppContext, inbound_id: int, reason: str) -> str:
    try:
        with ctx.db.session() as session:
            session.execute(
                update(InboundMessage)
                .where(InboundMessage.id == inbound_id, InboundMessage.status == InboundStatus.STORED)
                .values(status=InboundStatus.QUARANTINED, quarantine_reason=reason, processed_at=now())
            )
            status = session.execute(
                select(InboundMessage.status).where(InboundMessage.id == inbound_id)
            ).scalar_one_or_none()
        return status or InboundStatus.QUARANTINED
    except Exception:
        # The database is gone: the row stays `stored` and process_pending takes it up later.
        log.exception("inbound %s: could not record the quarantine", inbound_id)
        return InboundStatus.STORED


def _process(ctx: AppContext, inbound_id: int) -> str:
    with ctx.db.session() as session:
        row = session.get(InboundMessage, inbound_id)
        if row is None:
            raise LookupError(f"no inbound mail {inbound_id}")
        if row.status != InboundStatus.STORED:
            return row.status
        raw = row.raw or b""
    analysis = analyze(raw)
    # Judged outside any transaction: verifying DKIM may wait on DNS, and no pooled connection, row lock
    # or SQLite write lock should wait with it.
    sender = _judge_sender(ctx, raw, analysis)
    with ctx.db.session() as session:
        # Claiming the row first makes a second worker on the same mail wait, then find nothing to do.
        claimed = session.execute(
            update(InboundMessage)
            .where(InboundMessage.id == inbound_id, InboundMessage.status == InboundStatus.STORED)
            .values(status=InboundStatus.PROCESSED, processed_at=now())
        ).rowcount  # type: ignore[attr-defined]
        row = session.get(InboundMessage, inbound_id)
        if row is None:
            raise LookupError(f"no inbound mail {inbound_id}")
        if not claimed:
            return row.status
        _describe(row, analysis, sender)
        if analysis.quarantine_reason:
            row.status = InboundStatus.QUARANTINED
            row.quarantine_reason = analysis.quarantine_reason
            return row.status
        _act(ctx, session, row, analysis)
        return row.status


def _judge_sender(ctx: AppContext, raw: bytes, analysis: Analysis) -> SenderAuth | None:
    """Whether the From address is proven, for the mails that reach customer service as a person's words
    (a reply, or an unrecognised mail from an applicant's address); None for the rest."""
    if analysis.quarantine_reason or analysis.kind not in ("reply", "other"):
        return None
    if analysis.kind == "other":
        with ctx.db.session() as session:
            if account_by_address(session, analysis.from_address) is None:
                return None
    return sender_auth.judge(raw, ctx.settings, from_address=analysis.from_address)


def _describe(row: InboundMessage, analysis: Analysis, sender: SenderAuth | None = None) -> None:
    row.kind = analysis.kind
    row.from_address = printable(analysis.from_address)[:320]
    row.subject = printable(analysis.subject)[:500]
    if sender is not None:
        row.sender_auth = sender.verdict
        row.sender_auth_detail = printable(sender.detail)[:300]


def printable(text: str) -> str:
    """Text as every backend stores it: PostgreSQL refuses NUL characters, which any mail may carry."""
    return text.replace("\x00", "")


def _act(ctx: AppContext, session: Session, row: InboundMessage, analysis: Analysis) -> None:
    tag = _check_tag(ctx, session, row, analysis)
    if tag.forged:
        row.forged = True
        _record_recipients(session, row, analysis.recipients, {})
        audit.record(session, ACTOR, "inbound_forged", "inbound", row.id, kind=analysis.kind)
        log.warning("inbound %s: return-path tag does not verify; recorded as forged", row.id)
        return
    handler = _HANDLERS.get(analysis.kind, _on_other)
    handler(session, row, analysis, tag.outbox)


# --- correlation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TagCheck:
    outbox: OutboxMessage | None
    forged: bool


def _tag_candidates(row: InboundMessage, analysis: Analysis, domain: str) -> list[str]:
    found: list[str] = []
    for address in [*row.envelope_to.split(","), analysis.returned_return_path]:
        address = address.strip().strip("<>").lower()
        if address.startswith("bounce+") and address.endswith("@" + domain) and address not in found:
            found.append(address)
    return found


def _check_tag(ctx: AppContext, session: Session, row: InboundMessage, analysis: Analysis) -> TagCheck:
    candidates = _tag_candidates(row, analysis, ctx.settings.mail.bounce_domain.lower())
    verified = False
    for address in candidates:
        try:
            outbox_id, valid = parse_tag(ctx.settings, address)
        except Exception:
            outbox_id, valid = None, False
        if not valid:
            continue
        verified = True
        outbox = session.get(OutboxMessage, outbox_id) if outbox_id is not None else None
        if outbox is not None:
            return TagCheck(outbox, False)
    return TagCheck(None, bool(candidates) and not verified)


def _by_message_id(session: Session, ids: list[str]) -> OutboxMessage | None:
    wanted = [f"<{i.strip().strip('<>')}>" for i in ids if i and i.strip().strip("<>")]
    if not wanted:
        return None
    found = {m.message_id: m for m in session.execute(
        select(OutboxMessage).where(OutboxMessage.message_id.in_(wanted))).scalars()}
    return next((found[i] for i in wanted if i in found), None)


def _latest_sent_to(session: Session, address: str, row: InboundMessage) -> OutboxMessage | None:
    key = address_key(address)
    if not key:
        return None
    return session.execute(
        select(OutboxMessage)
        .where(OutboxMessage.to_key == key, OutboxMessage.sent_at.is_not(None),
               OutboxMessage.sent_at <= row.received_at)
        .order_by(OutboxMessage.sent_at.desc(), OutboxMessage.id.desc()).limit(1)
    ).scalar_one_or_none()


def _returned_mail(session: Session, analysis: Analysis,
                   tagged: OutboxMessage | None) -> OutboxMessage | None:
    """The mail of ours a bounce, complaint or auto-reply returns, by tag then Message-ID."""
    if tagged is not None:
        return tagged
    return _by_message_id(session, [analysis.returned_message_id, *analysis.in_reply_to])


@dataclass(frozen=True)
class Match:
    """The mail of ours a failed recipient is about, and whether the bounce proved it (see the module
    docstring): only a proven match may stop mail to an address."""

    mail: OutboxMessage | None
    proven: bool


def _mail_for_recipient(session: Session, row: InboundMessage, returned: OutboxMessage | None,
                        address: str, only_one: bool) -> Match:
    # A one-recipient bounce of a known mail is about that mail even when the failing address differs
    # (the applicant's mailbox forwarded it on); the applicant's address is the one we act on.
    if returned is not None and (only_one or returned.to_key == address_key(address)):
        return Match(returned, True)
    return Match(_latest_sent_to(session, address, row), False)


# --- consequences --------------------------------------------------------------------------


def _unique(recipients: tuple[FailedRecipient, ...]) -> list[FailedRecipient]:
    seen: dict[tuple[str, str], FailedRecipient] = {}
    for r in recipients:
        seen.setdefault((address_key(r.address), r.action), r)
    return list(seen.values())


def _record_recipients(session: Session, row: InboundMessage, recipients: tuple[FailedRecipient, ...],
                       mails: dict[str, OutboxMessage | None]) -> None:
    for r in recipients:
        mail = mails.get(address_key(r.address))
        session.add(BounceRecipient(
            inbound_id=row.id, address=printable(r.address)[:320], action=(r.action or "failed")[:10],
            hard=r.hard, reason=(r.reason or "undefined")[:40], status=printable(r.status)[:12],
            diagnostic=printable(r.diagnostic or ""),
            outbox_id=mail.id if mail is not None else None))


def _link(row: InboundMessage, mail: OutboxMessage | None, account: Account | None = None) -> None:
    if mail is not None and row.outbox_id is None:
        row.outbox_id = mail.id
    account_id = mail.account_id if mail is not None else None
    if account_id is None and account is not None:
        account_id = account.id
    if account_id is not None and row.account_id is None:
        row.account_id = account_id


def _on_bounce(session: Session, row: InboundMessage, analysis: Analysis,
               tagged: OutboxMessage | None) -> None:
    returned = _returned_mail(session, analysis, tagged)
    recipients = _unique(analysis.recipients)
    only_one = len(recipients) == 1
    matches = {address_key(r.address): _mail_for_recipient(session, row, returned, r.address, only_one)
               for r in recipients}
    _record_recipients(session, row, analysis.recipients, {k: m.mail for k, m in matches.items()})
    for r in recipients:
        match = matches[address_key(r.address)]
        mail = match.mail
        _link(row, mail)
        if mail is None:
            audit.record(session, ACTOR, "bounce_uncorrelated", "inbound", row.id, address=r.address)
            continue
        bounce_seen(session, mail, r.action, r.hard, r.reason, r.status, proven=match.proven)  # API mails
        if r.action == "delayed":
            continue  # a delay notice is a warning: the mail may still arrive
        if not match.proven:
            _unproven(session, row, mail, SupportKind.HARD_BOUNCE if r.hard else None, r.reason,
                      printable(f"{r.status} {r.reason}: {r.diagnostic}").strip())
            continue
        if r.hard:
            _undeliverable(session, row, mail, r, SupportKind.HARD_BOUNCE)
            continue
        count = record_soft_bounce(session, mail.to_key)
        audit.record(session, ACTOR, "soft_bounce_counted", "outbox", mail.id, address=mail.to_key,
                     count=count, reason=r.reason)
        if count >= SOFT_BOUNCE_LIMIT:
            _undeliverable(session, row, mail, r, SupportKind.SOFT_BOUNCES)


def _undeliverable(session: Session, row: InboundMessage, mail: OutboxMessage, r: FailedRecipient,
                   kind: str) -> None:
    """Hard bounce (or too many soft ones): stop mailing the address, flag its accounts, tell support."""
    address = mail.to_key
    detail = printable(f"{r.status} {r.reason}: {r.diagnostic}").strip()[:2000]
    suppress(session, address, kind, detail, actor=ACTOR)
    accounts = _accounts_with_address(session, address)
    for flagged in accounts:
        if not flagged.email_undeliverable:
            flagged.email_undeliverable = True
            audit.record(session, ACTOR, "email_undeliverable", "account", flagged.id, address=address,
                         inbound_id=row.id, outbox_id=mail.id)
    account = _mail_account(session, mail)
    if account is None and accounts:
        account = accounts[0]
    open_item(session, kind, address=address, reason=r.reason, diagnostic=printable(r.diagnostic),
              outbox_id=mail.id,
              account_id=account.id if account else None,
              application_id=_application_id(session, mail, account), inbound_id=row.id)


# What customer service reads on an item opened by a report that named only an address.
UNPROVEN_NOTE = "此退信/檢舉未附本系統的退信標記或原信編號,無法證明確實來自收件端,系統未停止寄送;請人工判斷。"


def _unproven(session: Session, row: InboundMessage, mail: OutboxMessage, kind: str | None, reason: str,
              detail: str) -> None:
    """A bounce or complaint matched by address alone: recorded and linked, never acted on (anyone who
    knows an applicant's address could have sent it). A hard one or a complaint is shown to customer
    service, marked as unproven; a soft one is only audited."""
    audit.record(session, ACTOR, "report_unproven", "outbox", mail.id, inbound_id=row.id,
                 address=mail.to_key, kind=kind or "soft_bounce")
    log.warning("inbound %s: a report matched a mail by address only; recorded, nothing suppressed", row.id)
    if kind is None:
        return
    account = _mail_account(session, mail)
    open_item(session, kind, address=mail.to_key, reason=reason,
              diagnostic=f"{UNPROVEN_NOTE} {detail}".strip(), outbox_id=mail.id,
              account_id=account.id if account else None,
              application_id=_application_id(session, mail, account), inbound_id=row.id)


def _on_complaint(session: Session, row: InboundMessage, analysis: Analysis,
                  tagged: OutboxMessage | None) -> None:
    returned = _returned_mail(session, analysis, tagged)
    recipients = _unique(analysis.recipients)
    if returned is None and len(recipients) == 1:
        guessed = _latest_sent_to(session, recipients[0].address, row)
        _record_recipients(session, row, analysis.recipients, {address_key(recipients[0].address): guessed})
        _link(row, guessed)
        if guessed is None:
            audit.record(session, ACTOR, "complaint_uncorrelated", "inbound", row.id)
        else:
            _unproven(session, row, guessed, SupportKind.COMPLAINT, analysis.feedback_type or "abuse",
                      "")
        return
    _record_recipients(session, row, analysis.recipients,
                       {address_key(r.address): returned for r in recipients})
    _link(row, returned)
    if returned is None:
        audit.record(session, ACTOR, "complaint_uncorrelated", "inbound", row.id)
        return
    suppress(session, returned.to_key, "complaint", analysis.feedback_type or "abuse report", actor=ACTOR)
    account = _mail_account(session, returned)
    open_item(session, SupportKind.COMPLAINT, address=returned.to_key,
              reason=analysis.feedback_type or "abuse", outbox_id=returned.id,
              account_id=account.id if account else None,
              application_id=_application_id(session, returned, account), inbound_id=row.id)


def _on_autoreply(session: Session, row: InboundMessage, analysis: Analysis,
                  tagged: OutboxMessage | None) -> None:
    mail = _returned_mail(session, analysis, tagged) or _latest_sent_to(session, analysis.from_address, row)
    _link(row, mail)
    note_autoreply(session, row, mail)  # low priority: visible to customer service, one item per account
    if mail is not None and not mail.autoreply_seen:
        mail.autoreply_seen = True
        audit.record(session, ACTOR, "autoreply_seen", "outbox", mail.id, inbound_id=row.id)


def _on_reply(session: Session, row: InboundMessage, analysis: Analysis,
              tagged: OutboxMessage | None) -> None:
    mail = _by_message_id(session, list(analysis.in_reply_to))
    sender = address_key(analysis.from_address)
    account = _mail_account(session, mail) if mail is not None else account_by_address(session, sender)
    _link(row, mail, account)
    row.summary = printable(analysis.text)  # the full text; the item gets the part the person wrote
    kind = SupportKind.REPLY
    if mail is not None and mail.template in VERIFICATION_TEMPLATES and sender and sender != mail.to_key:
        kind = SupportKind.FORWARDED_VERIFICATION
    summary = strip_quoted(printable(analysis.text))[:SUMMARY_LIMIT] or printable(analysis.subject)
    verdict = row.sender_auth or sender_auth.NONE
    item = open_item(session, kind, address=sender, outbox_id=mail.id if mail else None,
                     account_id=account.id if account else None,
                     application_id=_application_id(session, mail, account), inbound_id=row.id,
                     summary=summary, sender_auth=verdict,
                     reason="forwarded verification mail" if kind != SupportKind.REPLY else "")
    if item.inbound_id != row.id:
        # The matter is already open: the new words go on it instead of a second item, marked when
        # their sender is not proven, and the item shows the weakest verdict of its mails.
        item.sender_auth = sender_auth.weakest([item.sender_auth, verdict])
        label = "" if verdict == sender_auth.PASS else f"[{sender_auth_label(verdict)}] "
        session.add(SupportNote(item_id=item.id, author=ACTOR, text=label + summary))
        audit.record(session, ACTOR, "support_item_noted", "support_item", item.id, inbound_id=row.id,
                     sender_auth=verdict)


def _on_other(session: Session, row: InboundMessage, analysis: Analysis,
              tagged: OutboxMessage | None) -> None:
    # A person who writes to us without replying to a mail is still an applicant customer service
    # must answer; anything else unrecognised is only recorded.
    if account_by_address(session, analysis.from_address) is not None:
        _on_reply(session, row, analysis, tagged)


_HANDLERS = {"bounce": _on_bounce, "complaint": _on_complaint, "autoreply": _on_autoreply, "reply": _on_reply}


# --- accounts and applications -------------------------------------------------------------


def _accounts_with_address(session: Session, key: str) -> list[Account]:
    query = select(Account).where(Account.email_key == key).order_by(Account.id)
    return list(session.execute(query).scalars())


def _mail_account(session: Session, mail: OutboxMessage | None) -> Account | None:
    if mail is None or mail.account_id is None:
        return None
    return session.get(Account, mail.account_id)


def _application_id(session: Session, mail: OutboxMessage | None, account: Account | None) -> int | None:
    if mail is not None and mail.application_id is not None:
        return mail.application_id
    if account is None:
        return None
    return session.execute(
        select(Application.id).where(Application.account_id == account.id)
        .order_by(Application.id.desc()).limit(1)
    ).scalar_one_or_none()


# --- reply text ----------------------------------------------------------------------------

_ON_WROTE_RE = re.compile(r"^\s*On\s.*wrote:\s*$", re.I)
_ON_START_RE = re.compile(r"^\s*On\s.*\d", re.I)
_ZH_WROTE_RE = re.compile(r"^.*(?:於|在).*(?:寫道|写道)\s*[:：]\s*$")
_ORIGINAL_RE = re.compile(r"^\s*-{2,}\s*(?:Original Message|原始郵件|原始邮件|Forwarded message)\s*-{2,}",
                          re.I)
_FROM_BLOCK_RE = re.compile(r"^\s*(?:\*\s*)?(?:From|寄件者|发件人)\s*[:：]", re.I)
_HEADER_LINE_RE = re.compile(r"^\s*(?:\*\s*)?(?:Sent|Date|To|Subject|Cc|寄件日期|傳送時間|收件者|主旨|日期|"
                             r"发送时间|收件人|主题)\s*[:：]", re.I)


def strip_quoted(text: str) -> str:
    """What the person wrote: the text above the quoted history of the mail they answer."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    for i, line in enumerate(lines):
        if _starts_history(lines, i):
            break
        if not line.lstrip().startswith(">"):
            kept.append(line)
    while kept and not kept[-1].strip().strip("_"):
        kept.pop()
    return "\n".join(kept).strip()


def _starts_history(lines: list[str], i: int) -> bool:
    line = lines[i]
    if _ON_WROTE_RE.match(line) or _ZH_WROTE_RE.match(line) or _ORIGINAL_RE.match(line):
        return True
    # "On Mon, 1 Jan 2026 at 10:00, Someone <a@b>\nwrote:" is folded by many clients.
    if _ON_START_RE.match(line) and i + 1 < len(lines) and lines[i + 1].strip().lower().endswith("wrote:"):
        return True
    if _FROM_BLOCK_RE.match(line):
        following = lines[i + 1:i + 5]
        if line.lstrip().startswith(("寄件者", "发件人")):
            return True
        return any(_HEADER_LINE_RE.match(f) for f in following)
    return False
