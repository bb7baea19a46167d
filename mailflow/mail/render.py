"""Rendering: a template folder (templates/<name>/subject.txt, body.txt, body.html) plus an outbox row
become one standards-correct message, optionally DKIM-signed.

``build_message`` is the reference form, a stdlib ``EmailMessage``. ``render_bytes`` (what dispatch sends)
writes the same bytes directly, because the stdlib's header parsing and generator cost milliseconds a mail;
tests/mail/test_wire.py holds the two to byte equality. Either way headers come only from
``email.headerregistry`` folding or from values checked to be plain, never by pasting user data into
header text, so a name with CR/LF cannot add a header.

The switch (mailflow.reference): with ``MAILFLOW_REFERENCE_PATHS=1`` in the environment (read at import;
the tests' option ``--reference-paths`` sets it) ``render_bytes`` sends what
``build_message(...).as_bytes()`` gives instead of the direct writer's bytes. CI runs the mail tests once
that way (scripts/test.sh), so the reference path stays a working way to send, not only the yardstick of
test_wire.py.

Upgrading Python (the writer copies the folding of the stdlib it was written against, 3.11):
1. On the new Python run ``python -m pytest tests/mail/test_wire.py`` a few times (its hypothesis test
   draws new names, addresses and texts each run). Passing: the stdlib folds as before, nothing to do.
2. Failing: the stdlib's header folding or MIME layout changed. Until the writer follows, run the
   service with ``MAILFLOW_REFERENCE_PATHS=1``: the same mails as the stdlib writes them, at its cost
   (milliseconds a mail, see bench/dispatch.py); the reference pass of scripts/test.sh keeps that path
   tested.
3. Bring the writer's short paths in line with what the failing example shows (``_to_line``,
   ``_encoded_word``, ``_message_id_line``, ``_date_line``, ``_base64_body``, the fixed part headers in
   ``assemble``) until test_wire.py passes, then drop the variable and compare bench/dispatch.py's
   figures with docs/BENCHMARKS.md.
"""

from __future__ import annotations

import base64
import binascii
import os
import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.policy import SMTP, EmailPolicy
from email.utils import format_datetime, parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, TemplateNotFound, select_autoescape

from mailflow import reference
from mailflow.config import Settings
from mailflow.mail import contexts
from mailflow.paths import templates_dir
from mailflow.support.digest import COUNT_LABELS
from mailflow.timeutil import TAIPEI, now, roc_date, roc_datetime, taipei

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
    if isinstance(value, str):
        return _roc_datetime_of_text(value)
    moment = _as_datetime(value)
    return roc_datetime(moment) if moment else str(value or "")


@lru_cache(maxsize=1024)
def _roc_datetime_of_text(value: str) -> str:
    # A mail shows its time in both parts, and many mails of one run share it.
    moment = _as_datetime(value)
    return roc_datetime(moment) if moment else value


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
        # Freshness is checked by environment() once a second, not by a stat of every file per render.
        auto_reload=False,
    )
    env.filters["roc_datetime"] = _roc_datetime
    env.filters["roc_date"] = _roc_date
    return env


FRESHNESS_SECONDS = 1.0  # an operator's edit of a template shows in the mails within this time
_last_checked: dict[int, float] = {}


def environment() -> Environment:
    # Keyed on the variable templates_dir() reads, so the folder is resolved once, not for every mail.
    env = _environment_for(os.environ.get("MAILFLOW_TEMPLATES_DIR", ""))
    _drop_stale_templates(env)
    return env


def _drop_stale_templates(env: Environment) -> None:
    """Forget the compiled templates when any of their files changed (checked at most once a second)."""
    moment = time.monotonic()
    if moment - _last_checked.get(id(env), float("-inf")) < FRESHNESS_SECONDS:
        return
    _last_checked[id(env)] = moment
    if env.cache is not None and not all(template.is_up_to_date for template in list(env.cache.values())):
        env.cache.clear()


@lru_cache(maxsize=4)
def _environment_for(_override: str) -> Environment:
    return _environment(str(templates_dir()))


def display_hours(hours: str) -> str:
    """'08:00-18:00' as the seed writes it: '8:00~18:00'."""
    parts = [part.strip() for part in hours.split("-")]
    return "~".join(part[1:] if len(part) == 5 and part.startswith("0") else part for part in parts)


def template_globals(settings: Settings) -> dict[str, Any]:
    return dict(_globals(settings.mail.support_phone, settings.mail.support_hours, settings.http.base_url))


@lru_cache(maxsize=16)
def _globals(support_phone: str, support_hours: str, base_url: str) -> tuple[tuple[str, str], ...]:
    return (("support_phone", support_phone), ("support_hours", display_hours(support_hours)),
            ("base_url", base_url.rstrip("/")))


TEMPLATE_PARTS = ("subject.txt", "body.txt", "body.html")


def template_exists(name: str) -> bool:
    folder = templates_dir() / name
    return all((folder / part).is_file() for part in TEMPLATE_PARTS)


def render_parts(settings: Settings, template: str, context: Mapping[str, Any]) -> RenderedParts:
    """The three parts of ``template`` with ``context``. A missing value renders empty (a late mail with
    a blank is better than a lost one); data a template cannot use at all is a RenderError."""
    if "/" in template or "\\" in template or template.startswith("."):
        raise RenderError(f"unknown mail template {template!r}")
    env = environment()
    try:
        # Jinja keeps the compiled templates and only checks their files' times (auto_reload), so an
        # operator's edit is picked up without re-reading every file for every mail.
        compiled = [env.get_template(f"{template}/{part}") for part in TEMPLATE_PARTS]
    except TemplateNotFound as exc:
        raise RenderError(f"unknown mail template {template!r}") from exc
    # One dict for the three parts, handed to each as its context's own (shared) variables: Template.render
    # copies the values and Jinja's globals twice per part, a fifth of the rendering time.
    values = {**env.globals, **template_globals(settings), **context}
    try:
        subject, text, html = (env.concat(part.root_render_func(part.new_context(values, shared=True)))
                               for part in compiled)
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


def build_message(settings: Settings, mail: Envelope, moment: datetime | None = None,
                  boundary: str | None = None) -> EmailMessage:
    """The message as a stdlib ``EmailMessage``: the reference form. ``render_bytes`` writes the same
    bytes directly (tests/mail/test_render.py compares the two)."""
    return message_of(settings, mail, render_parts(settings, mail.template, mail.context), moment, boundary)


def message_of(settings: Settings, mail: Envelope, parts: RenderedParts, moment: datetime | None = None,
               boundary: str | None = None) -> EmailMessage:
    """``build_message`` for a mail whose parts are already rendered."""
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
    message.set_boundary(boundary or new_boundary())
    return message


def new_boundary() -> str:
    # Unique, not secret: '=_' never occurs in base64, so no body can contain the boundary anyway.
    return f"=_mf_{random.getrandbits(128):032x}"


# From and Subject are listed twice (over-signing, RFC 6376 8.15): the second entry signs "no further
# header of this name", so a From or Subject added on top of the signed one breaks the signature instead
# of being what a reader's client shows. An absent Reply-To is signed the same way: none may be added.
DKIM_HEADERS = (b"from", b"from", b"to", b"subject", b"subject", b"date", b"message-id", b"reply-to",
                b"mime-version", b"content-type", b"auto-submitted")
# relaxed/relaxed: relays that refold a header or change whitespace at a line end (several do) would
# break a "simple" body or header hash while the mail is unchanged.
DKIM_CANONICALIZE = (b"relaxed", b"relaxed")


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
                          _dkim_key(settings.mail.dkim_key), include_headers=list(DKIM_HEADERS),
                          canonicalize=DKIM_CANONICALIZE)
    return bytes(signature) + raw


# --- The direct writer -------------------------------------------------------------------------------
# Dispatch renders every mail, and the stdlib's parse-and-refold of each header plus its generator cost
# several milliseconds a mail. The writer below emits the very bytes ``build_message(...).as_bytes()``
# would: values that vary per mail (To, Date, Message-ID) take a short path when they have a plain shape
# whose folded form is known (one line, an atom or one encoded word); anything else, and every value that
# repeats (From, Subject, Reply-To), is folded by the stdlib itself and remembered (``_fold_cached``).

_MAX_LINE = 78  # the SMTP policy's max_line_length
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ADDRESS = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
_PLAIN_MESSAGE_ID = re.compile(r"<[A-Za-z0-9._+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*>")
_ASCII_WORDS = re.compile(r"[A-Za-z0-9]+(?: [A-Za-z0-9]+)*")
_ALNUM = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def is_plain_address(spec: str) -> bool:
    """A dot-atom local part at a domain of ASCII labels: written as it is everywhere, no quoting."""
    return _PLAIN_ADDRESS.fullmatch(spec) is not None


def _encoded_word(text: str) -> str:
    """RFC 2047 word for text of letters, digits and non-ASCII characters, choosing q or b the way the
    stdlib does (q unless it is at least five characters longer than b)."""
    raw = text.encode("utf-8")
    b_text = base64.b64encode(raw).decode("ascii")
    q_length = len(raw) + 2 * len(raw.translate(None, _ALNUM))  # every other byte becomes '=XX'
    if q_length - len(b_text) < 5:
        q_text = "".join(chr(byte) if byte in _ALNUM else f"={byte:02X}" for byte in raw)
        return f"=?utf-8?q?{q_text}?="
    return f"=?utf-8?b?{b_text}?="


def _display_name(name: str) -> str | None:
    """The folded form of a display name when it is plain (ASCII words, or one run of letters, digits
    and non-ASCII characters); None sends the header through the stdlib."""
    if not name or _ASCII_WORDS.fullmatch(name):
        return name
    if not name.isascii() and all(not ch.isascii() or ch.isalnum() for ch in name):
        return _encoded_word(name)
    return None


def _to_line(to_name: str, to_address: str) -> bytes:
    spec = to_address.strip()
    name = single_line(to_name)
    if is_plain_address(spec):
        shown = _display_name(name)
        if shown is not None:
            line = f"To: {shown} <{spec}>" if shown else f"To: {spec}"
            if len(line) <= _MAX_LINE:
                return line.encode("ascii") + b"\r\n"
    return _fold_cached("To", str(address(name, spec)))


def _date_line(moment: datetime) -> bytes:
    return _date_line_of_second(moment.replace(microsecond=0))


@lru_cache(maxsize=4)
def _date_line_of_second(moment: datetime) -> bytes:
    # Mails sent in the same second share their Date header.
    return b"Date: " + format_datetime(taipei(moment)).encode("ascii") + b"\r\n"


def _message_id_line(message_id: str) -> bytes:
    value = single_line(message_id)
    line = f"Message-ID: {value}"
    if _PLAIN_MESSAGE_ID.fullmatch(value) and len(line) <= _MAX_LINE:
        return line.encode("ascii") + b"\r\n"
    return _fold_cached("Message-ID", value)


@lru_cache(maxsize=64)
def _fixed_head(from_: str, reply_address: str) -> tuple[bytes, bytes]:
    """The From line and the Reply-To line (or nothing) for one configuration."""
    name, spec = parseaddr(from_)
    from_line = _fold_cached("From", str(address(name, spec)))
    reply_line = _fold_cached("Reply-To", str(address("", reply_address))) if reply_address else b""
    return from_line, reply_line


_TRAILER = b"MIME-Version: 1.0\r\nAuto-Submitted: auto-generated\r\nX-Auto-Response-Suppress: All\r\n"


def _base64_body(text: str) -> bytes:
    """What set_content(cte='base64') stores: the text's lines ended by CRLF, base64 in 76-column lines."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate from odd stored data: this mail can never go
        raise RenderError(f"text that cannot be written as UTF-8: {exc}") from exc
    # The stdlib joins the lines of bytes.splitlines() (which ends a line at \r\n, \r or \n) with CRLF
    # and ends the last one; replacing the line ends in place does the same without a list of lines.
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    data = data.replace(b"\n", b"\r\n")
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    # base64.encodebytes's 57-byte chunks, cut from one encoding of the whole (a third faster).
    encoded = binascii.b2a_base64(data, newline=False)
    return b"".join([encoded[i:i + 76] + b"\r\n" for i in range(0, len(encoded), 76)])


def wire_bytes(settings: Settings, mail: Envelope, moment: datetime | None = None,
               boundary: str | None = None) -> bytes:
    """``build_message(settings, mail, moment, boundary).as_bytes()`` written directly (unsigned)."""
    return assemble(settings, mail, render_parts(settings, mail.template, mail.context), moment, boundary)


def assemble(settings: Settings, mail: Envelope, parts: RenderedParts, moment: datetime | None = None,
             boundary: str | None = None) -> bytes:
    """The unsigned wire form of a mail whose parts are rendered (the second half of ``wire_bytes``)."""
    from_line, reply_line = _fixed_head(settings.mail.from_, settings.mail.reply_address or "")
    mark = (boundary or new_boundary()).encode("ascii")
    return b"".join((
        from_line, _to_line(mail.to_name, mail.to_address), reply_line,
        _fold_cached("Subject", parts.subject),
        _date_line(moment or now()),
        _message_id_line(mail.message_id), _TRAILER,
        b'Content-Type: multipart/alternative;\r\n boundary="', mark, b'"\r\n\r\n',
        b"--", mark, b'\r\nContent-Type: text/plain; charset="utf-8"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n", _base64_body(parts.text),
        b"\r\n--", mark, b'\r\nContent-Type: text/html; charset="utf-8"\r\n'
        b"Content-Transfer-Encoding: base64\r\nMIME-Version: 1.0\r\n\r\n", _base64_body(parts.html),
        b"\r\n--", mark, b"--\r\n",
    ))


def render_bytes(settings: Settings, mail: Envelope, moment: datetime | None = None) -> bytes:
    """The wire form of one mail: CRLF line ends, signed when DKIM is configured."""
    return finish_bytes(settings, mail, render_parts(settings, mail.template, mail.context), moment)


def finish_bytes(settings: Settings, mail: Envelope, parts: RenderedParts,
                 moment: datetime | None = None) -> bytes:
    """``render_bytes`` for a mail whose parts are already rendered."""
    if reference.ON:  # through build_message instead of the direct writer (see the module's docstring)
        return dkim_sign(settings, message_of(settings, mail, parts, moment).as_bytes())
    return dkim_sign(settings, assemble(settings, mail, parts, moment))


def sample_context(template: str, settings: Settings) -> dict[str, Any]:
    """Believable data for previews and tests (the seed's examples): a catalogued mail's sample is its
    context type (mailflow.mail.contexts) filled in, an API mail's the keys of its meta.toml."""
    samples: dict[str, Any] = {**_catalogued_samples(settings),
                               "pass-issued": {**_pass_sample(settings), "valid_until": "116年11月30日"},
                               "pass-expiring": {**_pass_sample(settings), "valid_until": "115年12月31日",
                                                 "days_left": "30"}}
    if template in samples:
        return dict(samples[template])
    # A template added later without its own sample: offer every sample value we know.
    merged: dict[str, Any] = {}
    for values in samples.values():
        merged.update(values)
    return merged


def _catalogued_samples(settings: Settings) -> dict[str, Mapping[str, Any]]:
    base = settings.http.base_url.rstrip("/")
    submitted = now()
    expires = (submitted + timedelta(hours=settings.security.token_ttl_hours)).isoformat()
    company_name, ubn, name, account = "臺灣港務股份有限公司基隆分公司", "12345678", "王小明", "example1234"
    verification = contexts.VerificationMail(name=name, account=account, kind="general",
                                             verify_url=f"{base}/verify/sample-token", expires_at=expires)
    return {
        "registration-received": contexts.RegistrationReceived(
            name=name, account=account, company_name=company_name, ubn=ubn,
            submitted_at=submitted.isoformat()),
        "account-approved": verification,
        "account-rejected": contexts.AccountRejected(
            name=name, account=account, company_name=company_name, ubn=ubn, register_url=f"{base}/register",
            reasons=["「營利事業登記證」自98年4月13日起停止使用,不再作為證明文件,請改提出其他最新版本之「商業登記證明文件」。"]),
        "document-approved": contexts.DocumentApproved(
            name=name, company_name=company_name, ubn=ubn, note="文件清晰完整。",
            system_url=settings.mail.pass_system_url),
        "document-rejected": contexts.DocumentRejected(
            name=name, company_name=company_name, ubn=ubn, reasons=["文件影像模糊,無法辨識統一編號。"]),
        "verify-reminder": verification,
        "binding-request": contexts.BindingRequest(
            general_name=name, general_account=account, company_name=company_name, ubn=ubn,
            shared_name="陳大文", shared_account="shared5678",
            confirm_url=f"{base}/verify/sample-binding-token", expires_at=expires),
        "binding-ended": contexts.BindingEnded(
            general_name=name, general_account=account, company_name=company_name, ubn=ubn,
            shared_name="陳大文", shared_account="shared5678",
            recipient_name=name, ended_by="shared", ended_at=submitted.isoformat()),
        "support-digest": _digest_sample(taipei(submitted).date(), base),
        **_selfservice_samples(base, submitted, name, account),
    }


def _selfservice_samples(base: str, moment: datetime, name: str,
                         account: str) -> dict[str, Mapping[str, Any]]:
    """The self-service mails (mailflow.mail.queue builds the same keys)."""
    links = contexts.AccountLinks(login_url=f"{base}/account", forgot_url=f"{base}/password/forgot")
    changed = moment.isoformat()
    return {
        "password-reset": contexts.PasswordReset(
            name=name, account=account, reset_url=f"{base}/password/reset/sample-token",
            expires_at=(moment + timedelta(hours=1)).isoformat()),
        "password-changed": contexts.PasswordChanged(name=name, account=account, changed_at=changed,
                                                     via="reset", **links),
        "account-reminder": contexts.AccountReminder(**links, accounts=[
            {"account": "example1234", "kind": "general", "companies": ["臺灣港務股份有限公司基隆分公司"]},
            {"account": "shared5678", "kind": "shared",
             "companies": ["臺灣港務股份有限公司基隆分公司", "高雄港埠物流股份有限公司"]}]),
        "email-change": contexts.EmailChange(
            name=name, account=account, old_address="w***@example.com",
            verify_url=f"{base}/verify/sample-email-token",
            expires_at=(moment + timedelta(hours=24)).isoformat()),
        "email-changed": contexts.EmailChanged(name=name, account=account, changed_at=changed,
                                               new_address="w***@harbour-logistics.com.tw", **links),
    }


def _pass_sample(settings: Settings) -> dict[str, Any]:
    """What the pass system gives the pass-* templates (their meta.toml), and the system_url we add."""
    return {"name": "王小明", "company_name": "臺灣港務股份有限公司基隆分公司",
            "pass_number": "KL-1150001234", "pass_type": "臨時通行證(人員)", "holder_name": "陳大文",
            "system_url": settings.mail.pass_system_url}


def _digest_sample(day: date, base: str) -> contexts.SupportDigest:
    """A morning's digest as mailflow.support.digest builds it, with full-length real values (a long
    company name, a long address), so a preview or a layout check sees what customer service gets."""
    counts = {key: n for key, n in zip(COUNT_LABELS, (182, 3, 2, 1, 0, 2, 14), strict=True)}
    # Staff read 民國 times, as build_digest writes them (roc_datetime).
    at = datetime(day.year, day.month, day.day, 7, 42, tzinfo=TAIPEI)
    item = {"kind": "bounce", "kind_title": "退信", "created_at": roc_datetime(at),
            "name": "王小明", "account": "example1234", "mobile": "0912-345-678",
            "company_name": "臺灣港務股份有限公司基隆分公司", "ubn": "12345678",
            "address": "wang.xiaoming.logistics@keelung-harbour-freight.com.tw",
            "reason_text": "收件信箱不存在(對方郵件伺服器回覆 550 5.1.1 使用者不存在),請與申請人確認 Email。",
            "summary": "信箱不存在"}
    reply = {**item, "kind": "reply", "kind_title": "申請人回信",
             "created_at": roc_datetime(at.replace(hour=6, minute=5)),
             "address": "chen.dawen@example.com.tw", "reason_text": "申請人回信詢問審核進度。"}
    return {"day": day.isoformat(), "counts_day": (day - timedelta(days=1)).isoformat(),
            "counts": {**counts, "open_items": 2}, "count_labels": COUNT_LABELS,
            "open_by_kind": [{"kind": "bounce", "title": "退信", "count": 1, "more": False},
                             {"kind": "reply", "title": "申請人回信", "count": 1, "more": False}],
            "items": [item, reply], "items_shown": 2, "items_total": 2, "dashboard_url": f"{base}/support"}
