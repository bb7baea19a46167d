"""`mailflow demo`: a guided first run. Seeds a reviewer login, a support login and a few applications in
the states a newcomer wants to see (submitted, approved but not verified, verified, rejected, and one whose
mail bounced hard with its customer-service item), through the same services the pages use — the bounce
through the inbound pipeline, as `mailflow inbound import` feeds a file — so every page has something to
show within a minute.

Idempotent: an applicant already seeded is left as it is; the two demo staff logins get a fresh password on
every run (printed, since nobody could read the old one back). Refused in relay mode: demo logins with
printed passwords do not belong on a production database.
"""

from __future__ import annotations

import argparse
import io
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parseaddr

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailflow.accounts import review
from mailflow.accounts.documents import Upload
from mailflow.accounts.lookup import latest_application
from mailflow.accounts.registration import register_general, taken_fields
from mailflow.accounts.rules import is_valid_ubn
from mailflow.accounts.verification import complete_verification
from mailflow.commands import app_context
from mailflow.config import Settings
from mailflow.context import AppContext
from mailflow.inbound.importer import ImportResult, Source, import_one
from mailflow.mail.returnpath import make_return_path
from mailflow.models import (
    Account,
    Application,
    ApplicationStatus,
    OutboxMessage,
    StaffRole,
    StaffUser,
)
from mailflow.passwords import hash_password

DEMO_ACTOR = "staff:demo-reviewer"
APPLICANT_PASSWORD = "Demo-Pass2024"
STAFF = (("demo-reviewer", StaffRole.REVIEWER), ("demo-support", StaffRole.SUPPORT))
FIRST_DEMO_UBN = 90000000


@dataclass(frozen=True)
class DemoApplicant:
    account: str
    name: str
    company_name: str
    state: str  # one of STATES


# What each state means to a newcomer, in the order the printout lists them.
STATES = {
    "submitted": "已送出,等待審核(可在 /review 審核)",
    "approved": "已核准,尚未完成 Email 驗證(驗證信在 /dev/mailbox)",
    "verified": "已核准並完成驗證(可登入)",
    "rejected": "未通過審核(退件原因已寄出)",
    "bounced": "已核准,但 Email 無法送達(客服項目在 /support)",
}

APPLICANTS = (
    DemoApplicant("demo01submitted", "陳志明", "北港貨櫃運輸股份有限公司", "submitted"),
    DemoApplicant("demo02approved", "林美玲", "高雄港埠物流股份有限公司", "approved"),
    DemoApplicant("demo03verified", "黃建國", "基隆海運報關行", "verified"),
    DemoApplicant("demo04rejected", "張淑芬", "臺中港倉儲股份有限公司", "rejected"),
    DemoApplicant("demo05bounced", "李大同", "花蓮港工程有限公司", "bounced"),
)


@dataclass
class DemoReport:
    staff: dict[str, str] = field(default_factory=dict)  # name -> password
    created: list[DemoApplicant] = field(default_factory=list)
    existing: list[DemoApplicant] = field(default_factory=list)


def demo_pdf(title: str) -> bytes:
    """A one-page PDF with one line of text, so the reviewer's document viewer shows something real."""
    text = title.replace("\\", "").replace("(", "").replace(")", "")
    stream = f"BT /F1 24 Tf 72 720 Td ({text}) Tj ET".encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def free_ubn(session: Session, account: str) -> str:
    """The first valid 統一編號 from FIRST_DEMO_UBN up that no live registration holds."""
    for number in range(FIRST_DEMO_UBN, FIRST_DEMO_UBN + 100_000):
        ubn = f"{number:08d}"
        if is_valid_ubn(ubn) and not taken_fields(session, account, ubn).get("ubn"):
            return ubn
    raise RuntimeError("no free demo 統一編號 left")


def registration_fields(session: Session, who: DemoApplicant) -> dict[str, str]:
    number = who.account[4:6]
    return {
        "account": who.account, "name": who.name, "mobile": f"09123456{number}",
        "email": f"{who.account}@example.com.tw", "password": APPLICANT_PASSWORD,
        "password_confirm": APPLICANT_PASSWORD, "ubn": free_ubn(session, who.account),
        "company_phone": "07-5219000", "company_name": who.company_name,
        "company_address": "804004高雄市鼓山區蓬萊路10號", "company_owner": who.name,
    }


def seed_staff(session: Session) -> dict[str, str]:
    """The two demo staff logins, created or given a fresh password (and enabled)."""
    logins: dict[str, str] = {}
    for name, role in STAFF:
        password = secrets.token_urlsafe(12)
        staff = session.scalar(select(StaffUser).where(StaffUser.name == name))
        if staff is None:
            staff = StaffUser(name=name, role=role, password_hash="")
            session.add(staff)
        staff.password_hash = hash_password(password)
        staff.disabled = False
        logins[name] = password
    return logins


def _approval_mail(session: Session, application: Application) -> OutboxMessage:
    return session.scalars(select(OutboxMessage).where(
        OutboxMessage.application_id == application.id, OutboxMessage.template == "document-approved")
    ).one()


def _verify_token(session: Session, account: Account) -> str:
    mail = session.scalars(select(OutboxMessage).where(
        OutboxMessage.account_id == account.id, OutboxMessage.template == "account-approved")
        .order_by(OutboxMessage.id.desc())).first()
    if mail is None or not mail.context.get("verify_url"):
        raise RuntimeError(f"no verification link queued for {account.account}")
    return str(mail.context["verify_url"]).rsplit("/", 1)[1]


def _approve(session: Session, settings: Settings, application: Application) -> None:
    review.approve(session, settings, application.id, DEMO_ACTOR, "示範資料:文件清晰完整")


def _verify(session: Session, settings: Settings, application: Application) -> None:
    _approve(session, settings, application)
    session.flush()
    complete_verification(session, settings, _verify_token(session, application.account), APPLICANT_PASSWORD)


def _reject(session: Session, settings: Settings, application: Application) -> None:
    reasons = review.resolve_reasons(["brc-obsolete"], ["公司名稱與文件不符(示範)"])
    review.reject(session, settings, application.id, DEMO_ACTOR, reasons)


def bounce_of(settings: Settings, mail: OutboxMessage) -> bytes:
    """The notice a receiving server sends when ``mail``'s mailbox does not exist (a Postfix DSN, RFC
    3464), returning our signed return path and Message-ID as a real one does. The same bytes on every
    run, so the inbound store keeps it once."""
    sent = mail.created_at.strftime("%a, %d %b %Y %H:%M:%S +0000")
    head = "\r\n".join([
        f"Return-Path: <{make_return_path(settings, mail.id)}>",
        f"From: <{parseaddr(settings.mail.from_)[1]}>",
        f"To: {mail.to_address}",
        f"Message-ID: {mail.message_id}",
        f"Date: {sent}",
        "Subject: demo",
    ])
    notice = (
        "This is the mail system at host mx.example.com.tw.\r\n\r\n"
        "I'm sorry to have to inform you that your message could not\r\n"
        "be delivered to one or more recipients.\r\n\r\n"
        f"<{mail.to_address}>: host mx.example.com.tw[192.0.2.25] said: 550 5.1.1\r\n"
        f"    <{mail.to_address}>: Recipient address rejected: User unknown\r\n"
    )
    status = (
        "Reporting-MTA: dns; mx.example.com.tw\r\n\r\n"
        f"Final-Recipient: rfc822; {mail.to_address}\r\n"
        "Action: failed\r\nStatus: 5.1.1\r\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{mail.to_address}>: Recipient address rejected: User unknown\r\n"
    )
    boundary = f"demo-bounce-{mail.id}"
    parts = [("text/plain; charset=us-ascii", notice), ("message/delivery-status", status),
             ("text/rfc822-headers", head + "\r\n")]
    body = "".join(f"--{boundary}\r\nContent-Type: {kind}\r\n\r\n{text}\r\n" for kind, text in parts)
    return (
        "From: MAILER-DAEMON@mx.example.com.tw (Mail Delivery System)\r\n"
        f"To: {make_return_path(settings, mail.id)}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: <demo-bounce-{mail.id}@mx.example.com.tw>\r\n"
        f"Date: {sent}\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\r\n\r\n'
        f"{body}--{boundary}--\r\n"
    ).encode("ascii")


def feed_bounce(ctx: AppContext, who: DemoApplicant) -> str:
    """The bounce of ``who``'s approval mail, through the inbound pipeline as `mailflow inbound import`
    feeds a file (stored raw, then routed): the suppression, the flagged account and the customer-service
    item are what the pipeline makes of it, not a copy. Idempotent: the store keeps one row per message."""
    with ctx.db.session() as session:
        account = session.scalar(select(Account).where(Account.account == who.account))
        application = latest_application(session, account.id) if account is not None else None
        if application is None:
            raise RuntimeError(f"demo account {who.account} has no application")
        raw = bounce_of(ctx.settings, _approval_mail(session, application))
    return import_one(ctx, Source(f"mailflow demo: {who.account}", lambda: raw), ImportResult())


DECISIONS: dict[str, Callable[[Session, Settings, Application], None]] = {
    "approved": _approve, "verified": _verify, "rejected": _reject, "bounced": _approve,
}


def seed_applicant(ctx: AppContext, who: DemoApplicant) -> bool:
    """Register ``who`` and bring the application to its state; False when it was registered before.
    A run that stopped between the registration and the decision is completed by the next one."""
    with ctx.db.session() as session:
        account = session.scalar(select(Account).where(Account.account == who.account))
        created = account is None
        if account is None:
            pdf = demo_pdf(f"Demo company registration - {who.account}")
            application = register_general(session, ctx.settings, registration_fields(session, who),
                                           Upload("公司登記表.pdf", io.BytesIO(pdf)))
        else:
            latest = latest_application(session, account.id)
            if latest is None:
                raise RuntimeError(f"demo account {who.account} has no application")
            application = latest
        decide = DECISIONS.get(who.state)
        if decide is not None and application.status == ApplicationStatus.SUBMITTED:
            decide(session, ctx.settings, application)
    if who.state == "bounced":  # once the approval mail is committed: the pipeline reads committed rows
        feed_bounce(ctx, who)
    return created


def seed_demo(ctx: AppContext) -> DemoReport:
    """Everything `mailflow demo` seeds; safe to call again."""
    report = DemoReport()
    with ctx.db.session() as session:
        report.staff = seed_staff(session)
    for who in APPLICANTS:
        (report.created if seed_applicant(ctx, who) else report.existing).append(who)
    return report


def print_report(settings: Settings, report: DemoReport) -> None:
    base = settings.http.base_url.rstrip("/")
    print("示範資料已建立 (demo data ready). Start the service with `mailflow run`, then open:")
    print(f"  {base}/register      registration form (註冊)")
    reviewer, support = report.staff["demo-reviewer"], report.staff["demo-support"]
    print(f"  {base}/review        reviewer console (審核)   login: demo-reviewer / {reviewer}")
    print(f"  {base}/support       support dashboard (客服)  login: demo-support / {support}")
    print(f"  {base}/dev/mailbox   the mails mailflow sent")
    print(f"Demo applicants (password {APPLICANT_PASSWORD}):")
    for who in APPLICANTS:
        seeded = "new" if who in report.created else "kept"
        print(f"  {who.account:<16} {who.name}  {STATES[who.state]}  [{seeded}]")


def cmd_demo(args: argparse.Namespace) -> int:
    ctx = app_context(args, create=True)  # a fresh checkout's first command, before `mailflow run`
    try:
        if ctx.settings.smtp.mode != "capture":
            print("mailflow: demo data is for capture mode only (smtp.mode = capture); nothing seeded",
                  file=sys.stderr)
            return 2
        report = seed_demo(ctx)
    finally:
        ctx.db.dispose()
    print_report(ctx.settings, report)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="seed demo staff logins and applications in every state (capture mode)")
    p.set_defaults(func=cmd_demo)
