"""Issue 13, finding 9: registrations and 共用帳號 sign-ups had no rate limit — ten sign-ups naming a
stranger's address sent ten official mails in 0.6 s, each greeting the stranger with whatever was typed as
姓名. Now each client address and each recipient have a limit that holds under 25 requests at once against
the live app (mailflow.accounts.signups), and the typed name stays out of the first lines and the To
header of a mail to an unverified address."""

from __future__ import annotations

import email
import itertools
from email.policy import default
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from mailflow.accounts import signups
from mailflow.accounts.rules import ubn_checksum_ok
from mailflow.context import AppContext
from mailflow.mail.render import Envelope, render_bytes
from mailflow.models import Account, OutboxMessage
from tests.security.live import at_once, live_app
from tests.web.test_register_api import FIELDS, PDF

AT_ONCE = 25
PHISH = "請立即撥打客服專線確認帳戶"  # letters only: a valid 姓名 to the rules
SHARED = {"name": "王小明", "mobile": "0912345678", "password": "Harbour2024",
          "password_confirm": "Harbour2024"}


def valid_ubns(count: int) -> list[str]:
    return list(itertools.islice((f"{n:08d}" for n in range(10_000_000, 99_999_999)
                                  if ubn_checksum_ok(f"{n:08d}")), count))


def sign_up(http: Any, i: int, address: str, name: str = "王小明") -> httpx.Response:
    return http.post("/api/shared-accounts", data={**SHARED, "name": name, "account": f"manager{i:03d}",
                                                   "email": address})


def mails(ctx: AppContext, to: str | None = None) -> list[OutboxMessage]:
    with ctx.db.session() as session:
        query = select(OutboxMessage)
        if to is not None:
            query = query.where(OutboxMessage.to_key == to.lower())
        rows = list(session.scalars(query.order_by(OutboxMessage.id)))
        session.expunge_all()
        return rows


def accounts(ctx: AppContext) -> int:
    with ctx.db.session() as session:
        return session.scalar(select(func.count()).select_from(Account)) or 0


def statuses(answers: list[httpx.Response]) -> dict[int, int]:
    found: dict[int, int] = {}
    for answer in answers:
        found[answer.status_code] = found.get(answer.status_code, 0) + 1
    return found


def test_25_sign_ups_at_once_from_one_address_stop_at_the_client_limit(ctx: AppContext) -> None:
    with live_app(ctx) as live, live.client() as http:
        answers = at_once(AT_ONCE, lambda i: sign_up(http, i, f"person{i}@example.com"))
    assert statuses(answers) == {201: signups.CLIENT_LIMIT, 429: AT_ONCE - signups.CLIENT_LIMIT}
    for refused in (a for a in answers if a.status_code == 429):
        assert "次數過多" in refused.json()["errors"]["form"] and int(refused.headers["retry-after"]) > 0
    assert accounts(ctx) == len(mails(ctx)) == signups.CLIENT_LIMIT


def test_25_sign_ups_at_once_naming_one_stranger_send_at_most_the_recipient_limit(ctx: AppContext) -> None:
    stranger = "stranger@example.com"
    with live_app(ctx) as live, live.client() as http:
        answers = at_once(AT_ONCE, lambda i: sign_up(http, i, stranger, PHISH))
    assert statuses(answers)[201] == signups.RECIPIENT_LIMIT
    assert len(mails(ctx, stranger)) == accounts(ctx) == signups.RECIPIENT_LIMIT
    by_recipient = [a for a in answers if a.status_code == 429 and "email" in a.json()["errors"]]
    assert by_recipient and all("今天已收到多封" in a.json()["errors"]["email"] for a in by_recipient)


def test_25_registrations_at_once_naming_one_address_send_at_most_the_recipient_limit(
        ctx: AppContext) -> None:
    ubns = valid_ubns(AT_ONCE)

    def register(http: httpx.Client, i: int) -> httpx.Response:
        fields = {**FIELDS, "account": f"company{i:03d}", "ubn": ubns[i], "email": "owner@example.com"}
        return http.post("/api/applications", data=fields,
                         files={"document": ("proof.pdf", PDF, "application/pdf")})

    with live_app(ctx) as live, live.client() as http:
        answers = at_once(AT_ONCE, lambda i: register(http, i))
    assert statuses(answers)[201] == signups.RECIPIENT_LIMIT
    assert len(mails(ctx, "owner@example.com")) == accounts(ctx) == signups.RECIPIENT_LIMIT
    assert len(list(ctx.settings.documents_path.iterdir())) == signups.RECIPIENT_LIMIT  # none left over


def test_the_register_page_says_so_in_zh_with_retry_after(ctx: AppContext, client: TestClient,
                                                         monkeypatch: Any) -> None:
    monkeypatch.setattr(signups, "CLIENT_LIMIT", 1)
    import re

    def token() -> str:
        found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/shared/register").text)
        assert found
        return found.group(1)

    first = client.post("/shared/register", data={**SHARED, "account": "manager001", "email": "a@example.com",
                                                  "csrf_token": token()}, follow_redirects=False)
    assert first.status_code == 303
    second = client.post("/shared/register", data={**SHARED, "account": "manager002",
                                                   "email": "b@example.com", "csrf_token": token()})
    assert second.status_code == 429 and "次數過多" in second.text and int(second.headers["retry-after"]) > 0


def first_lines(ctx: AppContext, mail: OutboxMessage, count: int = 3) -> tuple[str, str, str]:
    """(To header, first ``count`` lines of the text part, first paragraph of the HTML part)."""
    raw = render_bytes(ctx.settings, Envelope(mail.template, mail.to_address, mail.to_name, mail.message_id,
                                              mail.context or {}))
    message = email.message_from_bytes(raw, policy=default)
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    body = str(html.get_content())
    return (str(message["To"]), "\n".join(str(text.get_content()).splitlines()[:count]),
            body[body.index("<p"):body.index("</p>")])


def test_a_mail_to_an_unverified_address_opens_with_our_words_only(ctx: AppContext,
                                                                  client: TestClient) -> None:
    assert sign_up(client, 1, "stranger@example.com", PHISH).status_code == 201
    ubn = valid_ubns(1)[0]
    assert client.post("/api/applications", data={**FIELDS, "name": PHISH, "ubn": ubn},
                       files={"document": ("proof.pdf", PDF, "application/pdf")}).status_code == 201
    sent = mails(ctx)
    assert {m.template for m in sent} == {"account-approved", "registration-received"}
    for mail in sent:
        to, text, html = first_lines(ctx, mail)
        assert PHISH not in to and PHISH not in text and PHISH not in html, (mail.template, to, text)
        assert text.startswith("您好:")
    registration = next(m for m in sent if m.template == "registration-received")
    raw = render_bytes(ctx.settings, Envelope(registration.template, registration.to_address,
                                              registration.to_name, registration.message_id,
                                              registration.context or {}))
    assert PHISH.encode() not in raw.split(b"\r\n\r\n", 1)[0]  # nor in any header
