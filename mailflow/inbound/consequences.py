"""What each result changes: the consequences of a received mail, once `correlate` has found what it
answers.

`act(settings, session, row, analysis)` runs in the routing transaction (mailflow.inbound.route), so the
consequences happen exactly once or not at all. Per kind (`HANDLERS`):
- bounce (`on_bounce`): each failed recipient is recorded; a proven hard failure suppresses the address,
  flags its accounts and opens an item (`undeliverable`); a proven soft one is counted, and the fifth in a
  row acts as a hard one; a match by address alone is only recorded and shown (`unproven`).
- complaint (`on_complaint`): proven, it suppresses the address and opens an item; by address alone, an
  item marked unproven.
- auto-reply (`on_autoreply`): noted on the applicant's low-priority item; our mail is marked.
- reply (`on_reply`), and a mail from an applicant's address that answers nothing (`on_other`): an item
  with the words the person wrote, or a note on the one already open; the sender's verdict
  (mailflow.inbound.sender_auth) goes with it.
A mail whose return-path tag does not verify (forged) is recorded and changes nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.orm import Session

from mailflow import audit
from mailflow.accounts.lookup import (
    account_by_address,
    account_of_mail,
    accounts_with_address,
    latest_application,
)
from mailflow.config import Settings
from mailflow.inbound import sender_auth
from mailflow.inbound.analysis import Analysis, FailedRecipient
from mailflow.inbound.bounce.vocabulary import BounceReason
from mailflow.inbound.correlate import (
    by_message_id,
    check_tag,
    latest_sent_to,
    mail_for_recipient,
    returned_mail,
)
from mailflow.inbound.quoted import strip_quoted
from mailflow.inbound.store import printable
from mailflow.mail.catalog import VERIFICATION_TEMPLATES
from mailflow.mail.suppression import SOFT_BOUNCE_LIMIT, address_key, record_soft_bounce, suppress
from mailflow.models import (
    Account,
    BounceRecipient,
    InboundMessage,
    OutboxMessage,
    SupportKind,
    SupportNote,
)
from mailflow.notify.notifications import bounce_seen
from mailflow.support.items import note_autoreply, open_item
from mailflow.support.reasons_zh import sender_auth_label

log = logging.getLogger(__name__)

ACTOR = "system"
SUMMARY_LIMIT = 4000

Handler = Callable[[Session, InboundMessage, Analysis, "OutboxMessage | None"], None]


def act(settings: Settings, session: Session, row: InboundMessage, analysis: Analysis) -> None:
    """Everything ``row`` (understood as ``analysis``) changes, in the caller's transaction."""
    tag = check_tag(settings, session, row, analysis)
    if tag.forged:
        row.forged = True
        record_recipients(session, row, analysis.recipients, {})
        audit.record(session, ACTOR, "inbound_forged", "inbound", row.id, kind=analysis.kind)
        log.warning("inbound %s: return-path tag does not verify; recorded as forged", row.id)
        return
    handler = HANDLERS.get(analysis.kind, on_other)
    handler(session, row, analysis, tag.outbox)


# --- what every kind writes ----------------------------------------------------------------


def unique(recipients: tuple[FailedRecipient, ...]) -> list[FailedRecipient]:
    seen: dict[tuple[str, str], FailedRecipient] = {}
    for r in recipients:
        seen.setdefault((address_key(r.address), r.action), r)
    return list(seen.values())


def record_recipients(session: Session, row: InboundMessage, recipients: tuple[FailedRecipient, ...],
                      mails: dict[str, OutboxMessage | None]) -> None:
    for r in recipients:
        mail = mails.get(address_key(r.address))
        session.add(BounceRecipient(
            inbound_id=row.id, address=printable(r.address)[:320], action=(r.action or "failed")[:10],
            hard=r.hard, reason=(r.reason or BounceReason.UNDEFINED)[:40], status=printable(r.status)[:12],
            diagnostic=printable(r.diagnostic or ""),
            outbox_id=mail.id if mail is not None else None))


def link(row: InboundMessage, mail: OutboxMessage | None, account: Account | None = None) -> None:
    if mail is not None and row.outbox_id is None:
        row.outbox_id = mail.id
    account_id = mail.account_id if mail is not None else None
    if account_id is None and account is not None:
        account_id = account.id
    if account_id is not None and row.account_id is None:
        row.account_id = account_id


# --- bounces -------------------------------------------------------------------------------


def on_bounce(session: Session, row: InboundMessage, analysis: Analysis,
              tagged: OutboxMessage | None) -> None:
    returned = returned_mail(session, analysis, tagged)
    recipients = unique(analysis.recipients)
    only_one = len(recipients) == 1
    matches = {address_key(r.address): mail_for_recipient(session, row, returned, r.address, only_one)
               for r in recipients}
    record_recipients(session, row, analysis.recipients, {k: m.mail for k, m in matches.items()})
    for r in recipients:
        match = matches[address_key(r.address)]
        mail = match.mail
        link(row, mail)
        if mail is None:
            audit.record(session, ACTOR, "bounce_uncorrelated", "inbound", row.id, address=r.address)
            continue
        bounce_seen(session, mail, r.action, r.hard, r.reason, r.status, proven=match.proven)  # API mails
        if r.action == "delayed":
            continue  # a delay notice is a warning: the mail may still arrive
        if not match.proven:
            unproven(session, row, mail, SupportKind.HARD_BOUNCE if r.hard else None, r.reason,
                     printable(f"{r.status} {r.reason}: {r.diagnostic}").strip())
            continue
        if r.hard:
            undeliverable(session, row, mail, r, SupportKind.HARD_BOUNCE)
            continue
        count = record_soft_bounce(session, mail.to_key)
        audit.record(session, ACTOR, "soft_bounce_counted", "outbox", mail.id, address=mail.to_key,
                     count=count, reason=r.reason)
        if count >= SOFT_BOUNCE_LIMIT:
            undeliverable(session, row, mail, r, SupportKind.SOFT_BOUNCES)


def undeliverable(session: Session, row: InboundMessage, mail: OutboxMessage, r: FailedRecipient,
                  kind: str) -> None:
    """Hard bounce (or too many soft ones): stop mailing the address, flag its accounts, tell support."""
    address = mail.to_key
    detail = printable(f"{r.status} {r.reason}: {r.diagnostic}").strip()[:2000]
    suppress(session, address, kind, detail, actor=ACTOR)
    accounts = accounts_with_address(session, address)
    for flagged in accounts:
        if not flagged.email_undeliverable:
            flagged.email_undeliverable = True
            audit.record(session, ACTOR, "email_undeliverable", "account", flagged.id, address=address,
                         inbound_id=row.id, outbox_id=mail.id)
    account = account_of_mail(session, mail)
    if account is None and accounts:
        account = accounts[0]
    open_item(session, kind, address=address, reason=r.reason, diagnostic=printable(r.diagnostic),
              outbox_id=mail.id,
              account_id=account.id if account else None,
              application_id=application_id(session, mail, account), inbound_id=row.id)


# What customer service reads on an item opened by a report that named only an address.
UNPROVEN_NOTE = "此退信/檢舉未附本系統的退信標記或原信編號,無法證明確實來自收件端,系統未停止寄送;請人工判斷。"


def unproven(session: Session, row: InboundMessage, mail: OutboxMessage, kind: str | None, reason: str,
             detail: str) -> None:
    """A bounce or complaint matched by address alone: recorded and linked, never acted on (anyone who
    knows an applicant's address could have sent it). A hard one or a complaint is shown to customer
    service, marked as unproven; a soft one is only audited."""
    audit.record(session, ACTOR, "report_unproven", "outbox", mail.id, inbound_id=row.id,
                 address=mail.to_key, kind=kind or "soft_bounce")
    log.warning("inbound %s: a report matched a mail by address only; recorded, nothing suppressed", row.id)
    if kind is None:
        return
    account = account_of_mail(session, mail)
    open_item(session, kind, address=mail.to_key, reason=reason,
              diagnostic=f"{UNPROVEN_NOTE} {detail}".strip(), outbox_id=mail.id,
              account_id=account.id if account else None,
              application_id=application_id(session, mail, account), inbound_id=row.id)


# --- complaints, auto-replies, replies -----------------------------------------------------


def on_complaint(session: Session, row: InboundMessage, analysis: Analysis,
                 tagged: OutboxMessage | None) -> None:
    returned = returned_mail(session, analysis, tagged)
    recipients = unique(analysis.recipients)
    if returned is None and len(recipients) == 1:
        guessed = latest_sent_to(session, recipients[0].address, row)
        record_recipients(session, row, analysis.recipients, {address_key(recipients[0].address): guessed})
        link(row, guessed)
        if guessed is None:
            audit.record(session, ACTOR, "complaint_uncorrelated", "inbound", row.id)
        else:
            unproven(session, row, guessed, SupportKind.COMPLAINT, analysis.feedback_type or "abuse", "")
        return
    record_recipients(session, row, analysis.recipients,
                      {address_key(r.address): returned for r in recipients})
    link(row, returned)
    if returned is None:
        audit.record(session, ACTOR, "complaint_uncorrelated", "inbound", row.id)
        return
    suppress(session, returned.to_key, "complaint", analysis.feedback_type or "abuse report", actor=ACTOR)
    account = account_of_mail(session, returned)
    open_item(session, SupportKind.COMPLAINT, address=returned.to_key,
              reason=analysis.feedback_type or "abuse", outbox_id=returned.id,
              account_id=account.id if account else None,
              application_id=application_id(session, returned, account), inbound_id=row.id)


def on_autoreply(session: Session, row: InboundMessage, analysis: Analysis,
                 tagged: OutboxMessage | None) -> None:
    mail = returned_mail(session, analysis, tagged) or latest_sent_to(session, analysis.from_address, row)
    link(row, mail)
    note_autoreply(session, row, mail)  # low priority: visible to customer service, one item per account
    if mail is not None and not mail.autoreply_seen:
        mail.autoreply_seen = True
        audit.record(session, ACTOR, "autoreply_seen", "outbox", mail.id, inbound_id=row.id)


def on_reply(session: Session, row: InboundMessage, analysis: Analysis,
             tagged: OutboxMessage | None) -> None:
    mail = by_message_id(session, list(analysis.in_reply_to))
    sender = address_key(analysis.from_address)
    account = account_of_mail(session, mail) if mail is not None else account_by_address(session, sender)
    link(row, mail, account)
    row.summary = printable(analysis.text)  # the full text; the item gets the part the person wrote
    kind = SupportKind.REPLY
    if mail is not None and mail.template in VERIFICATION_TEMPLATES and sender and sender != mail.to_key:
        kind = SupportKind.FORWARDED_VERIFICATION
    summary = strip_quoted(printable(analysis.text))[:SUMMARY_LIMIT] or printable(analysis.subject)
    verdict = row.sender_auth or sender_auth.NONE
    item = open_item(session, kind, address=sender, outbox_id=mail.id if mail else None,
                     account_id=account.id if account else None,
                     application_id=application_id(session, mail, account), inbound_id=row.id,
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


def on_other(session: Session, row: InboundMessage, analysis: Analysis,
             tagged: OutboxMessage | None) -> None:
    # A person who writes to us without replying to a mail is still an applicant customer service
    # must answer; anything else unrecognised is only recorded.
    if account_by_address(session, analysis.from_address) is not None:
        on_reply(session, row, analysis, tagged)


HANDLERS: dict[str, Handler] = {"bounce": on_bounce, "complaint": on_complaint, "autoreply": on_autoreply,
                                "reply": on_reply}


# --- accounts and applications -------------------------------------------------------------


def application_id(session: Session, mail: OutboxMessage | None, account: Account | None) -> int | None:
    """The application a result is about: the one its mail names, else the account's newest."""
    if mail is not None and mail.application_id is not None:
        return mail.application_id
    if account is None:
        return None
    latest = latest_application(session, account.id)
    return latest.id if latest is not None else None
