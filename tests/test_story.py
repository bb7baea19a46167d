"""The seed's story end to end, through HTTP and real SMTP (dispatch -> the embedded capture server):
register -> registration mail -> review -> result mails -> verify by the link -> log in; and the
rejected applicant who registers again with the same account id and 統編."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mailflow.accounts.login import MSG_PENDING, MSG_REJECTED, MSG_UNVERIFIED
from mailflow.context import AppContext
from mailflow.mail.capture import CaptureServer, start_capture_server
from mailflow.mail.dispatch import run_dispatch
from mailflow.models import Account, CapturedMail, StaffUser
from mailflow.passwords import hash_password

PDF = b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
APPLICANT = {
    "account": "example1234", "name": "王小明", "mobile": "0912345678", "email": "example@gmail.com",
    "password": "Harbour2024", "password_confirm": "Harbour2024", "ubn": "04595257",
    "company_phone": "02-12345678#12345", "company_name": "臺灣港務股份有限公司基隆分公司",
    "company_address": "804004高雄市鼓山區蓬萊路10號", "company_owner": "陳大文",
}
REVIEWER_PASSWORD = "Reviewer-pass-2024"


class Mailbox:
    """What reached the capture server: dispatch sends the queued mails over SMTP, we read them back."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.seen = 0

    def deliver(self) -> list[EmailMessage]:
        run_dispatch(self.ctx, threading.Event())
        with self.ctx.db.session() as session:
            rows = session.scalars(select(CapturedMail).where(CapturedMail.id > self.seen)
                                   .order_by(CapturedMail.id)).all()
            self.seen = max([self.seen, *(r.id for r in rows)])
            return [message_from_bytes(r.raw, policy=default) for r in rows]


def text_of(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


@pytest.fixture
def capture(ctx: AppContext) -> Iterator[CaptureServer]:
    server = start_capture_server(ctx)
    yield server
    server.stop()


@pytest.fixture
def mailbox(ctx: AppContext, capture: CaptureServer) -> Mailbox:
    return Mailbox(ctx)


def register(client: TestClient) -> int:
    answer = client.post("/api/applications", data=APPLICANT,
                         files={"document": ("營業登記.pdf", PDF, "application/pdf")})
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def reviewer(ctx: AppContext, client: TestClient) -> None:
    with ctx.db.session() as session:
        session.add(StaffUser(name="lin", role="reviewer", password_hash=hash_password(REVIEWER_PASSWORD)))
    page = client.get("/staff/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    answer = client.post("/staff/login", data={"name": "lin", "password": REVIEWER_PASSWORD,
                                                "csrf_token": token.group(1)}, follow_redirects=False)
    assert answer.status_code == 303


def form_token(client: TestClient, path: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found
    return found.group(1)


def log_in(client: TestClient, password: str = APPLICANT["password"]):
    return client.post("/api/session", json={"account": APPLICANT["account"], "password": password})


def test_register_approve_verify_and_log_in(ctx: AppContext, client: TestClient, mailbox: Mailbox) -> None:
    application_id = register(client)
    (received,) = mailbox.deliver()
    assert received["To"].addresses[0].addr_spec == APPLICANT["email"]
    assert "註冊" in received["Subject"]
    assert log_in(client).json() == {"error": MSG_PENDING}

    reviewer(ctx, client)
    queue = client.get("/review")
    assert APPLICANT["account"] in queue.text and APPLICANT["company_name"] in queue.text
    page = client.get(f"/review/applications/{application_id}")
    for value in ("王小明", "0912345678", APPLICANT["ubn"], APPLICANT["company_address"], "陳大文"):
        assert value in page.text
    document = client.get(f"/review/applications/{application_id}/document")
    assert document.content == PDF and document.headers["content-type"] == "application/pdf"
    assert document.headers["x-content-type-options"] == "nosniff"
    assert document.headers["content-disposition"].startswith("inline;")
    encoded_name = "filename*=UTF-8''%E7%87%9F%E6%A5%AD%E7%99%BB%E8%A8%98.pdf"
    assert encoded_name in document.headers["content-disposition"]

    path = f"/review/applications/{application_id}"
    decision = {"note": "文件齊全", "csrf_token": form_token(client, path)}
    approved = client.post(f"{path}/approve", data=decision, follow_redirects=False)
    assert approved.status_code == 303
    mails = {m["Subject"]: text_of(m) for m in mailbox.deliver()}
    assert len(mails) == 2
    document_mail = next(body for body in mails.values() if "通過說明" in body)
    assert "文件齊全" in document_mail and "https://hep.twport.com.tw/twportpass/" in document_mail
    approval_mail = next(body for body in mails.values() if "/verify/" in body)
    link = re.search(r"http://testserver(/verify/[A-Za-z0-9_\-.]+)", approval_mail)
    assert link, approval_mail
    assert log_in(client).json() == {"error": MSG_UNVERIFIED}

    # A mail scanner opens the link first: nothing is consumed.
    for _ in range(2):
        shown = client.get(link.group(1))
        assert shown.status_code == 200 and APPLICANT["account"] in shown.text
    assert client.post(link.group(1), data={"password": "not-the-password"}).status_code == 403
    assert log_in(client).status_code == 403
    verified = client.post(link.group(1), data={"password": APPLICANT["password"]})
    assert verified.status_code == 200 and "完成驗證" in verified.text
    assert client.post(link.group(1), data={"password": APPLICANT["password"]}).status_code == 410

    session_answer = log_in(client)
    assert session_answer.status_code == 200
    assert session_answer.json() == {
        "account": "example1234", "kind": "general",
        "companies": [{"ubn": APPLICANT["ubn"], "name": APPLICANT["company_name"]}],
        "active_ubn": APPLICANT["ubn"],
    }
    assert "mf_session=" in session_answer.headers["set-cookie"]

    again = client.post(f"{path}/approve", data={"csrf_token": form_token(client, path)})
    assert again.status_code == 409 and "不可重複審核" in again.text
    assert mailbox.deliver() == []


def test_rejected_mail_lists_every_reason_and_the_applicant_registers_again(
    ctx: AppContext, client: TestClient, mailbox: Mailbox,
) -> None:
    application_id = register(client)
    mailbox.deliver()
    reviewer(ctx, client)
    path = f"/review/applications/{application_id}"
    rejected = client.post(f"{path}/reject", follow_redirects=False, data={
        "codes": ["brc-obsolete", "ubn-mismatch"], "other": "公司地址請填寫完整門牌",
        "csrf_token": form_token(client, path)})
    assert rejected.status_code == 303
    # Two reasons concern the company document: besides the account mail, the document mail goes too.
    account_subject = "通行證系統帳號註冊通知信件(帳號未審核通過)"
    document_subject = "通行證系統公司文件審核通知信件(未通過)"
    mails = {str(m["Subject"]): m for m in mailbox.deliver()}
    assert sorted(mails) == [document_subject, account_subject]
    body = text_of(mails[account_subject])
    assert ("「營利事業登記證」自98年4月13日起停止使用,不再作為證明文件,"
            "請改提出其他最新版本之「商業登記證明文件」") in body
    assert "統一編號與文件不符" in body and "公司地址請填寫完整門牌" in body
    assert "http://testserver/register" in body
    document_body = text_of(mails[document_subject])
    assert "統一編號與文件不符" in document_body and "公司地址請填寫完整門牌" not in document_body
    page = client.get(path)
    assert "staff:lin" in page.text and "公司地址請填寫完整門牌" in page.text

    assert log_in(client).json() == {"error": MSG_REJECTED}
    second = register(client)
    assert second != application_id
    with ctx.db.session() as session:
        accounts = session.scalars(select(Account).where(Account.account == APPLICANT["account"])).all()
        assert sorted(a.status for a in accounts) == ["pending", "rejected"]
    assert log_in(client).json() == {"error": MSG_PENDING}
