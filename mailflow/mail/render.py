"""Rendering: a template folder (templates/<name>/subject.txt, body.txt, body.html) plus an outbox row
become one standards-correct message (stdlib ``email``), optionally DKIM-signed.

Headers are built only from ``email.headerregistry`` objects and single-line values, never by pasting
user data into header text, so a name with CR/LF cannot add a header.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.policy import SMTP, EmailPolicy
from email.utils import format_datetime, parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from mailflow.config import Settings
from mailflow.paths import templates_dir
from mailflow.timeutil import now, roc_date, roc_datetime, taipei

# Raw tokens live in these context keys only until the mail reaches a final state (see outbox.transition).
SECRET_CONTEXT_KEYS = ("verify_url", "confirm_url")

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


class RenderError(ValueError):
    """A mail that cannot be built (unknown template, missing value, unusable address): permanent."""


@dataclass(frozen=True)
class RenderedParts:
    subject: str
    text: str
    html: str


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def _roc_datetime(value: Any) -> str:
    moment = _as_datetime(value)
    return roc_datetime(moment) if moment else str(value or "")


def _roc_date(value: Any) -> str:
    moment = _as_datetime(value)
    return roc_date(moment) if moment else str(value or "")


@lru_cache(maxsize=4)
def _environment(folder: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(folder),
        # Only the HTML part is escaped: the text part and the subject are plain text.
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=True,
    )
    env.filters["roc_datetime"] = _roc_datetime
    env.filters["roc_date"] = _roc_date
    return env


def environment() -> Environment:
    return _environment(str(templates_dir()))


def display_hours(hours: str) -> str:
    """'08:00-18:00' as the seed writes it: '8:00~18:00'."""
    parts = [part.strip() for part in hours.split("-")]
    return "~".join(part[1:] if len(part) == 5 and part.startswith("0") else part for part in parts)


def template_globals(settings: Settings) -> dict[str, Any]:
    return {
        "support_phone": settings.mail.support_phone,
        "support_hours": display_hours(settings.mail.support_hours),
        "base_url": settings.http.base_url.rstrip("/"),
    }


def template_exists(name: str) -> bool:
    folder = templates_dir() / name
    return all((folder / part).is_file() for part in ("subject.txt", "body.txt", "body.html"))


def render_parts(settings: Settings, template: str, context: dict[str, Any]) -> RenderedParts:
    """The three parts of ``template`` with ``context``. A missing value renders empty (a late mail with
    a blank is better than a lost one); data a template cannot use at all is a RenderError."""
    if "/" in template or "\\" in template or template.startswith(".") or not template_exists(template):
        raise RenderError(f"unknown mail template {template!r}")
    env = environment()
    values = {**template_globals(settings), **context}
    try:
        subject = env.get_template(f"{template}/subject.txt").render(values)
        text = env.get_template(f"{template}/body.txt").render(values)
        html = env.get_template(f"{template}/body.html").render(values)
    except Exception as exc:  # jinja's UndefinedError, a filter failing on odd data, ...
        raise RenderError(f"template {template!r} cannot be rendered: {exc}") from exc
    return RenderedParts(subject=single_line(subject), text=text, html=html)


def single_line(value: str) -> str:
    """Header-safe text: control characters (CR, LF, TAB, ...) become one space."""
    return " ".join(_CONTROL.sub(" ", value).split())


def address(display_name: str, addr_spec: str) -> Address:
    try:
        return Address(display_name=single_line(display_name), addr_spec=addr_spec.strip())
    except (ValueError, IndexError, TypeError) as exc:
        raise RenderError(f"unusable mail address {addr_spec!r}") from exc


def sender_address(settings: Settings) -> Address:
    name, spec = parseaddr(settings.mail.from_)
    return address(name, spec)


class _FoldCachePolicy(EmailPolicy):
    """The SMTP policy, remembering parsed and folded headers. The stdlib parses and refolds every header
    through a parse tree (about a millisecond for a CJK one); From, Subject and the part headers repeat from
    mail to mail, and both results depend only on the header's name and value."""

    def fold_binary(self, name: str, value: Any) -> bytes:
        return _fold_cached(name, str(value))

    def header_store_parse(self, name: str, value: Any) -> tuple[str, Any]:
        # Parsed headers are immutable, so one parse of a repeating value can serve every mail.
        if isinstance(value, str) and not hasattr(value, "name") and len(value.splitlines()) <= 1:
            return name, _parsed_header(name, value)
        return super().header_store_parse(name, value)


@lru_cache(maxsize=8192)
def _fold_cached(name: str, value: str) -> bytes:
    # Folding a header object (never the bare string) keeps RFC 2047 encoding of non-ASCII text.
    return SMTP.fold_binary(name, WIRE_POLICY.header_factory(name, value))


class _HeaderClasses(HeaderRegistry):
    """The stdlib builds a new header class with type() on every lookup; build each one once."""

    @lru_cache(maxsize=64)  # noqa: B019 (one registry per process)
    def __getitem__(self, name: str) -> type[BaseHeader]:
        return super().__getitem__(name)


@lru_cache(maxsize=8192)
def _parsed_header(name: str, value: str) -> Any:
    return WIRE_POLICY.header_factory(name, value)


WIRE_POLICY = _FoldCachePolicy(linesep="\r\n", header_factory=_HeaderClasses())


@dataclass(frozen=True)
class Envelope:
    """What one outbox row needs to become a message (kept apart from the ORM row for the bench)."""

    template: str
    to_address: str
    to_name: str
    message_id: str
    context: dict[str, Any]


def build_message(settings: Settings, mail: Envelope, moment: datetime | None = None) -> EmailMessage:
    parts = render_parts(settings, mail.template, mail.context)
    message = EmailMessage(policy=WIRE_POLICY)
    message["From"] = sender_address(settings)
    message["To"] = address(mail.to_name, mail.to_address)
    if settings.mail.reply_address:
        message["Reply-To"] = address("", settings.mail.reply_address)
    message["Subject"] = parts.subject
    message["Date"] = format_datetime(taipei(moment or now()))
    message["Message-ID"] = single_line(mail.message_id)
    message["MIME-Version"] = "1.0"
    # Transactional notices: Auto-Submitted stops well-behaved auto-responders (RFC 3834); the Microsoft
    # header asks Exchange/Outlook not to send out-of-office replies to a no-reply system.
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    # base64 keeps CJK lines 7-bit safe through relays that lack 8BITMIME.
    message.set_content(parts.text, subtype="plain", charset="utf-8", cte="base64")
    message.add_alternative(parts.html, subtype="html", charset="utf-8", cte="base64")
    # Our own boundary spares the generator a per-message regex scan; '-' and '_' never occur in base64.
    message.set_boundary(f"=_mf_{secrets.token_hex(16)}")
    return message


DKIM_HEADERS = (b"from", b"to", b"subject", b"date", b"message-id", b"reply-to", b"mime-version",
                b"content-type", b"auto-submitted")


@lru_cache(maxsize=2)
def _dkim_key(path: str) -> bytes:
    return Path(path).read_bytes()


def dkim_sign(settings: Settings, raw: bytes) -> bytes:
    """``raw`` with a DKIM-Signature for the From domain when mail.dkim_key/dkim_selector are set."""
    if not (settings.mail.dkim_key and settings.mail.dkim_selector):
        return raw
    import dkim

    domain = sender_address(settings).domain
    signature = dkim.sign(raw, settings.mail.dkim_selector.encode(), domain.encode(),
                          _dkim_key(settings.mail.dkim_key), include_headers=list(DKIM_HEADERS))
    return bytes(signature) + raw


def render_bytes(settings: Settings, mail: Envelope, moment: datetime | None = None) -> bytes:
    """The wire form of one mail: CRLF line ends, signed when DKIM is configured."""
    return dkim_sign(settings, build_message(settings, mail, moment).as_bytes(policy=WIRE_POLICY))


def sample_context(template: str, settings: Settings) -> dict[str, Any]:
    """Believable data for previews and tests (the seed's examples)."""
    base = settings.http.base_url.rstrip("/")
    submitted = now()
    expires = (submitted + timedelta(hours=settings.security.token_ttl_hours)).isoformat()
    company = {"company_name": "臺灣港務股份有限公司基隆分公司", "ubn": "12345678"}
    person = {"name": "王小明", "account": "example1234"}
    samples: dict[str, dict[str, Any]] = {
        "registration-received": {**person, **company, "submitted_at": submitted.isoformat()},
        "account-approved": {**person, "verify_url": f"{base}/verify/sample-token", "expires_at": expires},
        "account-rejected": {**person, **company, "register_url": f"{base}/register", "reasons": [
            "「營利事業登記證」自98年4月13日起停止使用,不再作為證明文件,請改提出其他最新版本之「商業登記證明文件」。",
        ]},
        "document-approved": {"name": "王小明", **company, "note": "文件清晰完整。",
                              "system_url": "https://hep.twport.com.tw/twportpass/"},
        "document-rejected": {"name": "王小明", **company, "reasons": ["文件影像模糊,無法辨識統一編號。"]},
        "verify-reminder": {**person, "verify_url": f"{base}/verify/sample-token", "expires_at": expires},
        "binding-request": {"general_name": "王小明", "general_account": "example1234", **company,
                            "shared_name": "陳大文", "shared_account": "shared5678",
                            "confirm_url": f"{base}/verify/sample-binding-token", "expires_at": expires},
        "support-digest": {"day": taipei(submitted).date().isoformat(),
                           "counts": {"退信": 3, "回覆": 2, "自動回覆": 1},
                           "items": [{"kind": "bounce", "account": "example1234", "summary": "信箱不存在"}]},
    }
    if template in samples:
        return samples[template]
    # A template added later without its own sample: offer every sample value we know.
    merged: dict[str, Any] = {}
    for values in samples.values():
        merged.update(values)
    return merged
