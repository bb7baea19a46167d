"""/dev/mailbox: what the capture SMTP server kept (smtp.mode = capture only; app.py mounts this router only
then). Pages show each mail rendered, newest first: the HTML part in a sandboxed iframe served with a strict
CSP, the text part, the headers and the raw source. /dev/mailbox/api/messages gives the same as JSON, which
tests and developers read verification links from."""

from __future__ import annotations

import email
import re
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from email.policy import default
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from sqlalchemy import String, cast, func, select
from sqlalchemy.orm import Session

from mailflow.models import CapturedMail
from mailflow.timeutil import iso_taipei
from mailflow.web.deps import RowId, get_session
from mailflow.web.pages import render

router = APIRouter(prefix="/dev/mailbox")
DbSession = Annotated[Session, Depends(get_session)]

PAGE_SIZE = 20
# The HTML part is someone else's markup: no scripts, no fetches, no forms, no framing of our pages.
# allow-same-origin (and nothing else) lets the mailbox page read the mail's height to size its frame;
# with scripts blocked by both the sandbox and default-src 'none', the mail itself can do nothing with it.
MAIL_HTML_CSP = ("default-src 'none'; img-src data: cid:; style-src 'unsafe-inline'; base-uri 'none'; "
                 "form-action 'none'; sandbox allow-same-origin")
# A link ends at white space, quotes, brackets, or CJK punctuation (。,() ...) that follows it in zh-TW text.
_LINK = re.compile(r"https?://[^\s<>\"'()\[\]\u3000-\u303f\uff00-\uffef]+")


@dataclass
class MailView:
    id: int
    received_at: str
    mail_from: str
    rcpt_tos: list[str]
    subject: str
    message_id: str
    from_: str
    to: str
    date: str
    headers: list[tuple[str, str]]
    text: str
    html: str
    links: list[str]
    raw: str

    def as_json(self, with_raw: bool = False) -> dict[str, Any]:
        data = asdict(self)
        data["from"] = data.pop("from_")
        data["headers"] = [list(pair) for pair in self.headers]
        if not with_raw:
            data.pop("raw")
        return data


def _part(message: EmailMessage, subtype: str) -> str:
    try:
        part = message.get_body((subtype,))
        return str(part.get_content()) if part is not None else ""
    except (LookupError, ValueError, AttributeError):  # unknown charset, broken encoding
        return ""


def _header(value: Any) -> str:
    return " ".join(str(value).split()) if value is not None else ""


def links_in(text: str) -> list[str]:
    return list(dict.fromkeys(match.rstrip(".,;:") for match in _LINK.findall(text)))


def view(row: CapturedMail) -> MailView:
    raw = bytes(row.raw or b"")
    message: EmailMessage = email.message_from_bytes(raw, policy=default)
    headers: list[tuple[str, str]] = []
    for name, value in message.items():
        try:
            headers.append((name, _header(value)))
        except Exception:  # an undecodable header is shown as it came
            headers.append((name, "(undecodable)"))
    text = _part(message, "plain")
    return MailView(
        id=row.id,
        received_at=iso_taipei(row.received_at) or "",
        mail_from=row.mail_from,
        rcpt_tos=list(row.rcpt_tos or []),
        subject=row.subject or _header(message.get("subject")),
        message_id=row.message_id,
        from_=dict(headers).get("From", ""),
        to=dict(headers).get("To", ""),
        date=dict(headers).get("Date", ""),
        headers=headers,
        text=text,
        html=_part(message, "html"),
        links=links_in(text),
        raw=raw.decode("utf-8", "replace"),
    )


def _load(session: Session, mail_id: int) -> CapturedMail:
    row = session.get(CapturedMail, mail_id)
    if row is None:
        raise HTTPException(status_code=404, detail="找不到這封信件")
    return row


def _newest(session: Session, *, to: str | None, limit: int, offset: int = 0) -> list[CapturedMail]:
    query = select(CapturedMail).order_by(CapturedMail.id.desc()).limit(limit).offset(offset)
    if to:
        # rcpt_tos is JSON; a LIKE on its text form works on every backend for this development view.
        query = query.where(func.lower(cast(CapturedMail.rcpt_tos, String)).contains(to.strip().lower()))
    return list(session.scalars(query))


@router.get("", response_class=HTMLResponse)
def mailbox(request: Request, session: DbSession,
            page: Annotated[int, Query(ge=1, le=100000)] = 1) -> HTMLResponse:
    total = session.scalar(select(func.count()).select_from(CapturedMail)) or 0
    mails = [view(row) for row in _newest(session, to=None, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)]
    pages = max(1, -(-total // PAGE_SIZE))
    return render(request, "mailbox.html", mails=mails, total=total, page=page, pages=pages, single=False)


@router.get("/{mail_id:rowid}", response_class=HTMLResponse)
def one_mail(request: Request, mail_id: RowId, session: DbSession) -> HTMLResponse:
    mails = [view(_load(session, mail_id))]
    return render(request, "mailbox.html", mails=mails, total=1, page=1, pages=1, single=True)


@router.get("/{mail_id:rowid}/html")
def mail_html(mail_id: RowId, session: DbSession) -> Response:
    html = view(_load(session, mail_id)).html or "<p>(這封信沒有 HTML 內容)</p>"
    return HTMLResponse(html, headers={"Content-Security-Policy": MAIL_HTML_CSP, "Cache-Control": "no-store"})


@router.get("/{mail_id:rowid}/raw")
def mail_raw(mail_id: RowId, session: DbSession) -> Response:
    return PlainTextResponse(view(_load(session, mail_id)).raw)


@router.get("/api/messages")
def api_messages(session: DbSession, to: Annotated[str | None, Query(max_length=320)] = None,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> JSONResponse:
    """Newest first; ``to`` keeps the mails whose envelope recipients contain that text."""
    return JSONResponse([view(row).as_json() for row in _newest(session, to=to, limit=limit)])


@router.get("/api/messages/{mail_id:rowid}")
def api_message(mail_id: RowId, session: DbSession) -> JSONResponse:
    return JSONResponse(view(_load(session, mail_id)).as_json(with_raw=True))
