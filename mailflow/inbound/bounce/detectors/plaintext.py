"""The generic reader of plain-text bounce notices, for MTAs no family detector knows.

Whatever the MTA, a notice that is not an RFC 3464 report names its failed recipients in a few
shapes, and this reader looks for those shapes rather than for any one MTA's wording:

- an SMTP transcript: ``RCPT TO:<addr>`` (after ``>>>``, ``In:``, ``Sent <<<`` or alone) and the
  reply lines that follow it (``<<< 550 ...``, ``Out: 550 ...``);
- sendmail's per-recipient reply line: ``550 <addr>... User unknown``;
- an address line: the address first on its line (``addr:``, ``<addr>``, ``* addr``, ``>>> addr``,
  ``addr [reason]``, ``addr ... reason``, ``addr on <date>``) with its reason on the same line or
  on the lines under it;
- a sentence about the delivery that names the address (``error delivering your mail to <addr>``);
- the ``X-Failed-Recipients`` header (Exim and others), which also decides between candidates.

Only the notice is read: the text before the returned message starts (a marker line such as
"----- Original message follows -----", or the first block of mail headers). Addresses of the
people on the sending side (the bounce's own From/To, the returned message's From, Sender,
Reply-To, Return-Path and Message-ID) are never taken for recipients.
"""

from __future__ import annotations

import re
from email.message import Message

from mailflow.inbound.bounce.context import Context
from mailflow.inbound.bounce.mailtext import ADDRESS_RE, clean_address, collapse
from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.patterns import lazy
from mailflow.inbound.bounce.textblocks import addresses_in, command_in, make_hit, smtp_command

NAME = "plaintext"
FAMILIES: tuple[str, ...] = ()

# --- is it a bounce at all --------------------------------------------------------------------

_SENDER_RE = lazy(
    r"mailer-daemon|postmaster|mail delivery|mailer daemon|post_master|mdaemon|mail administrator|"
    r"delivery subsystem|mail system",
    re.I,
)
_SUBJECT_RE = lazy(
    r"undeliver|undelivered|delivery (status|failure|notification|failed|has failed|problem|error)|"
    r"returned mail|returning message|failure notice|mail delivery failed|mail failure|"
    r"could not be delivered|"
    r"non remis|unzustellbar|nicht zustellbar|mail system error|message not delivered|delivery failure|"
    r"error sending your mail|failed delivery|rejected:|nondeliverable|non-delivery|returned to sender|"
    r"不能送達|無法傳遞|未送達|退信|退回|送信エラー|配信エラー|エラーメール",
    re.I,
)
# Words a notice uses about a failed delivery (lower case).
_FAILURE_WORDS = (
    "could not be delivered",
    "couldn't be delivered",
    "was not delivered",
    "wasn't able to deliver",
    "unable to deliver",
    "not be delivered",
    "delivery failed",
    "delivery has failed",
    "failed to deliver",
    "error delivering",
    "trouble delivering",
    "permanent error",
    "permanent fatal error",
    "delivery errors",
    "following address",
    "following recipient",
    "undeliverable",
    "did not reach",
    "returned to sender",
    "could not be reached",
    "delivery to the following",
    "message not delivered",
    "has not yet been delivered",
    "delivery problem",
    "failure reason",
    "rejected",
    "unknown",
    "failed",
    "error",
    "invalid",
    "malformed",
    "incorrectly",
    "not found",
    "no such",
    "does not exist",
    "refused",
    "denied",
    "postponed",
    "quota",
    "mailbox full",
    "full mailbox",
    "could not",
    "unable to",
    "无法发送",
    "无法送达",
    "無法傳送",
    "無法送達",
    "未能送达",
    "送信できません",
    "配信できません",
    "届きませんでした",
    "送信に失敗",
    "전송하지 못했",
    "전달되지 않았",
)
_CODE_RE = lazy(r"(?<![\d.])(?:[45]\d\d[ -]|[45]\.\d{1,3}\.\d{1,3}\b)")


# A person forwarding a bounce ("Fwd: Undeliverable: ...") sends no bounce of their own. ("Re:" is no
# such sign: Exchange writes "RE: <subject> : non remis" for its own notices.)
_PERSONAL_RE = lazy(r"^\s*(?:fwd?|fw|wg|tr|转发|轉寄)\s*[:：]", re.I)


def looks_like_bounce(ctx: Context) -> bool:
    """A mail that says it is a delivery report by its sender or subject (or X-Failed-Recipients), or
    by its form: RFC 6522's multipart/report of report-type delivery-status, even with a report part
    too thin for the RFC 3464 reader."""
    if ctx.header("X-Failed-Recipients") or _SENDER_RE.search(ctx.from_) or _is_dsn_report(ctx.msg):
        return True
    return bool(_SUBJECT_RE.search(ctx.subject)) and not _PERSONAL_RE.match(ctx.subject)


def _is_dsn_report(msg: Message) -> bool:
    if msg.get_content_type() != "multipart/report":
        return False
    return str(msg.get_param("report-type", "")).lower() == "delivery-status"


def _says_failure(text: str) -> bool:
    """Failure words, or an SMTP reply / enhanced status code of class 4 or 5."""
    low = text.lower()
    return any(w in low for w in _FAILURE_WORDS) or bool(_CODE_RE.search(text))


# --- where the notice ends ----------------------------------------------------------------------

_MARKER_RE = lazy(
    r"^[\s\-=_*|#>]*(?:"
    r"[-=_*|]{3,}.*(?:original|returned|unsent|copy of|message (?:text|header|body)|headers? of|"
    r"body of|enclosed|attached|rfc822)"
    r"|.*(?:below (?:this line )?is (?:a copy|the original)|original message follows|"
    r"message headers follow|original mail as follows|headers of the original|"
    r"(?<!receive a )copy of (?:the|your) message|original message header|"
    r"the original message (?:is|was) attached|"
    r"returned message|unsent message follows)"
    r")",
    re.I,
)
_HEADER_RE = lazy(
    r"^(?:Return-Path|Received|Message-I[Dd]|DKIM-Signature|X-[\w-]+|From|Date|Subject|To|MIME-Version"
    r"|Content-Type|Delivered-To):\s",
    re.I,
)
_STARTS_HEADERS = lazy(r"^(?:Return-Path|Received|DKIM-Signature|Delivered-To):\s", re.I)


def notice_region(notice: str) -> str:
    """The notice's own words: up to the returned message (a marker line or a block of headers)."""
    lines = notice[:30000].split("\n")
    for i, line in enumerate(lines):
        if i and _MARKER_RE.match(line):
            return "\n".join(lines[:i])
        if _STARTS_HEADERS.match(line) and _headers_follow(lines, i):
            return "\n".join(lines[:i])
    return "\n".join(lines)


def _headers_follow(lines: list[str], i: int) -> bool:
    following = [ln for ln in lines[i + 1 : i + 6] if ln.strip()]
    return sum(1 for ln in following if _HEADER_RE.match(ln) or ln[:1] in " \t") >= 2


# --- who must not be taken for a recipient ------------------------------------------------------

# The bounce's own From is the reporting system, never a recipient. The sender side (the bounce's To,
# the returned message's From, Sender, Reply-To, Return-Path) is only "soft": an address the notice
# lists as failed on a line of its own still counts (test mails are sent to oneself, list mail comes
# back to a poster who is also a member), but a mere mention in a sentence does not.
_OWN_HEADERS = ("From",)
_SOFT_HEADERS = ("To", "Cc", "Reply-To", "Sender")
_ORIGINAL_SENDER_HEADERS = ("From", "Sender", "Reply-To", "Return-Path", "Errors-To")
_SENDER_CONTEXT_RE = lazy(
    r"(?:envelope[- ]from|envelope sender|mail from:?|return-path:?|message-id:?|from:|sender:|reply-to:|"
    r"in-reply-to:|references:|\bid\b|contact|administrator|helpdesk|postmaster of|for more information)"
    r"[^\n@]{0,12}$",
    re.I,
)


def own_addresses(ctx: Context) -> tuple[set[str], set[str]]:
    """(never recipients, recipients only when listed): the reporting system, the sender side."""
    hard = _header_addresses(ctx.msg, _OWN_HEADERS)
    soft = _header_addresses(ctx.msg, _SOFT_HEADERS)
    if ctx.original is not None:
        hard |= _header_addresses(ctx.original, ("Message-ID",))
        soft |= _header_addresses(ctx.original, _ORIGINAL_SENDER_HEADERS)
    return hard, soft - hard


def _header_addresses(msg: Message, names: tuple[str, ...]) -> set[str]:
    found: set[str] = set()
    for name in names:
        for value in msg.get_all(name) or []:
            found.update(addresses_in(str(value)))
    return found


def _plausible(addr: str, skip: set[str]) -> bool:
    if "@" not in addr or addr in skip:
        return False
    local, _, domain = addr.rpartition("@")
    return bool(local and domain) and not _looks_like_message_id(local)


def _looks_like_message_id(local: str) -> bool:
    """"14a3e1b4b5a.10b1a4c5610175.8588386083425091336": dotted hex runs, not a mailbox name."""
    if len(local) < 16 or "." not in local:
        return False
    hexish = sum(c in "0123456789abcdef" for c in local.replace(".", ""))
    return hexish >= 0.8 * len(local.replace(".", ""))


# --- the shapes ----------------------------------------------------------------------------------

_RCPT_RE = lazy(r"RCPT\s+TO:\s*<?([^\s<>]+@[^\s<>]+?)>?(?:\s|$)", re.I)
# Blanks after the prefix only when there is one: "\s*(prefix)?\s*" let a line of a million blanks be
# split between the two every way (quadratic).
_REPLY_LINE_RE = lazy(r"^\s*(?:(?:<<<|Out:|Received\s*>>>|<-|S:)\s*)?([245]\d\d[ -].*)$")
_COMMAND_LINE_RE = lazy(r"^\s*(?:>>>|In:|Sent\s*<<<|->|C:)\s*(\S+)", re.I)
_SENDMAIL_RE = lazy(r"^\s*([45]\d\d)\s+<?([^\s<>]+@[^\s<>]+?)>?\.\.\.\s*(.*)$")
_DOMAIN = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
# Possessive (*+, ++): the leading blanks and a bullet run are never given back — "- " or "* " in front
# of an address is a bullet, and backtracking into a run of a million of them was quadratic.
_ADDRESS_LINE_RE = lazy(
    r"^\s*+(?:[*>\-•#]++\s*|(?:recipient|rcpt|address|user)s?\s*:\s*|.*?\bSMTP[=:])?[\"'<\[]?"
    r"((?:\"[^\"]+\"|[^\s<>\"'()\[\]:;,=]+)@" + _DOMAIN + r")[\"'>\]]?(?![A-Za-z0-9.-]*@)",
    re.I,
)
# "alias <addr>": the address in angle brackets right after the first one is the real one.
_BRACKETED_NEXT_RE = lazy(r"^\s*<([^\s<>]+@[^\s<>]+)>")
_SENTENCE_RE = lazy(
    r"\b(?:to|recipient\(?s?\)?|address(?:es)?|user|mailbox|for|rcpt)(?![\w.%+-])\W{0,4}<?"
    r"((?:\"[^\"]+\"|[^\s<>\"()\[\]:;,']+)@" + _DOMAIN + r")>?",
    re.I,
)


class _Found:
    """Recipients in the order first seen, each with the text that explains it."""

    def __init__(self, skip: set[str], soft: set[str]) -> None:
        self.skip, self.soft = skip, soft
        self.texts: dict[str, list[str]] = {}
        self.commands: dict[str, str] = {}

    def add(self, addr: str, text: str = "", command: str = "", *, listed: bool = True) -> bool:
        """Record `addr`; `listed` is False for an address only mentioned in a sentence."""
        addr = clean_address(addr)
        if not _plausible(addr, self.skip) or (not listed and addr in self.soft):
            return False
        parts = self.texts.setdefault(addr, [])
        if text and text not in parts:
            parts.append(text)
        if command and not self.commands.get(addr):
            self.commands[addr] = command
        return True


def _transcript(region: str, found: _Found) -> None:
    """RCPT TO lines and the replies after them, until the next command."""
    current, command = "", ""
    for line in region.split("\n"):
        rcpt = _RCPT_RE.search(line)
        if rcpt and (_COMMAND_LINE_RE.match(line) or line.lstrip().upper().startswith("RCPT")):
            current = clean_address(rcpt.group(1))
            command = "RCPT"
            continue
        cmd = _COMMAND_LINE_RE.match(line)
        if cmd:
            command = cmd.group(1).upper().rstrip(":")
            continue
        reply = _REPLY_LINE_RE.match(line)
        if reply and current and reply.group(1)[0] in "45":
            found.add(current, reply.group(1).strip(), "RCPT" if command == "RCPT" else command)


def _sendmail_lines(region: str, found: _Found) -> None:
    for line in region.split("\n"):
        m = _SENDMAIL_RE.match(line)
        if m:
            found.add(m.group(2), f"{m.group(1)} {m.group(3)}".strip())


def _paragraphs(region: str) -> list[list[str]]:
    paras: list[list[str]] = [[]]
    for line in region.split("\n"):
        if line.strip():
            paras[-1].append(line)
        elif paras[-1]:
            paras.append([])
    return [p for p in paras if p]


def _address_lines(region: str, found: _Found) -> None:
    """Addresses first on their line; the reason is the rest of the line and the lines under it."""
    paras = _paragraphs(region)
    for pi, para in enumerate(paras):
        owner, texts = "", list[str]()
        for line in para:
            m = _ADDRESS_LINE_RE.match(line)
            if m and _plausible(clean_address(m.group(1)), found.skip):
                if owner:
                    found.add(owner, collapse(" ".join(texts)))
                owner = clean_address(m.group(1))
                rest = line[m.end() :]
                alias = _BRACKETED_NEXT_RE.match(rest)
                if alias:
                    owner, rest = clean_address(alias.group(1)), rest[alias.end() :]
                rest = _DATE_RE.sub("", rest.strip().lstrip(":").strip())
                texts = [rest] if rest else []
                continue
            if owner:
                texts.append(line.strip())
        if owner:
            text = collapse(" ".join(texts))
            if not _meaningful(text):
                text = _text_around(paras, pi, found.skip)
            found.add(owner, text)


# Exchange writes "addr on 4/29/01 11:34:45 PM": the date says nothing about the failure.
_DATE_RE = lazy(r"^on\s+(?:\w{3},?\s+)?[\d/.-]+\s*\w*\s*[\d/.-]*\s*[\d:]*\s*(?:[AP]M|[+-]\d{4})?", re.I)


def _meaningful(text: str) -> bool:
    """More than a date or a name: a reason someone could read."""
    return len(re.sub(r"[\W\d_]+", "", text)) >= 8


def _names_a_recipient(para: list[str], skip: set[str]) -> bool:
    return any(
        (m := _ADDRESS_LINE_RE.match(line)) is not None and _plausible(clean_address(m.group(1)), skip)
        for line in para
    )


def _text_around(paras: list[list[str]], index: int, skip: set[str]) -> str:
    """The reason near an address paragraph that has none of its own: the paragraphs after it (up
    to the next one that lists a recipient); when those carry no SMTP code, the nearest paragraph
    before that does goes first (MailMarshal and Domino write "because of: 550 ..." above the list of
    recipients); with neither, the paragraph just before."""
    after: list[str] = []
    for para in paras[index + 1 : index + 4]:
        if _names_a_recipient(para, skip):
            break
        after.append(" ".join(line.strip() for line in para))
    text = collapse(" ".join(after))
    if _CODE_RE.search(text):
        return text[:1000]
    before = [collapse(" ".join(line.strip() for line in para)) for para in paras[max(0, index - 4) : index]]
    coded = [b for b in before if _CODE_RE.search(b) and not ADDRESS_RE.match(b)]
    if coded:
        return collapse(coded[-1] + " " + text)[:1000]
    if _meaningful(text):
        return text[:1000]
    if before and _meaningful(before[-1]):
        return before[-1][:1000]
    return ""


def _sentences(region: str, found: _Found) -> None:
    """An address inside a sentence about the delivery; the reason is that paragraph and the next."""
    paras = _paragraphs(region)
    for pi, para in enumerate(paras):
        text = "\n".join(para)
        for m in _SENTENCE_RE.finditer(text):
            before = text[max(0, m.start() - 40) : m.start()]
            if _SENDER_CONTEXT_RE.search(before + m.group(0)[: m.group(0).find(m.group(1))]):
                continue
            said = collapse(text + " " + _text_around(paras, pi, found.skip))
            found.add(m.group(1), said[:1500], listed=False)


def _only_address(region: str, found: _Found) -> None:
    """A short notice that names exactly one address (not the sender's) is about that one."""
    candidates = [
        m.group(0).lower()
        for m in ADDRESS_RE.finditer(region)
        if not _SENDER_CONTEXT_RE.search(region[max(0, m.start() - 40) : m.start()].lstrip("<"))
    ]
    candidates = [a for a in dict.fromkeys(candidates) if _plausible(a, found.skip) and a not in found.soft]
    if len(candidates) == 1:
        found.add(candidates[0], _paragraph_of(region, candidates[0]), listed=False)


def _original_recipient(ctx: Context, found: _Found) -> None:
    """A notice that names nobody: the one recipient of the returned message (Google Groups' way)."""
    if ctx.original is None:
        return
    addrs = addresses_in(str(ctx.original.get("To") or ""))
    if len(addrs) == 1:
        found.add(addrs[0], collapse(notice_region(ctx.notice))[:1000], listed=False)


def _failed_header(ctx: Context) -> list[str]:
    return addresses_in(" ".join(ctx.header_all("X-Failed-Recipients")))


def detect(ctx: Context) -> list[Hit] | None:
    if not looks_like_bounce(ctx) or _names_dsn_recipients(ctx) or _is_delay_warning(ctx):
        return None
    region = notice_region(ctx.notice)
    listed = _failed_header(ctx)
    if not (listed or _says_failure(region + " " + ctx.subject)):
        return None
    found = _Found(*own_addresses(ctx))
    for reader in (_transcript, _sendmail_lines, _address_lines):
        reader(region, found)
    for fallback in (_sentences, _only_address):
        if not found.texts:
            fallback(region, found)
    if listed and not (set(found.texts) & set(listed) or set(found.texts) - found.soft):
        # the MTA said who failed in a header and the notice names nobody else but the sender (a
        # greeting): take the header's, with whatever the notice says about them
        found.texts = {}
        for addr in listed:
            found.add(addr, _paragraph_of(region, addr) or collapse(region)[:1000])
    if not found.texts:
        _original_recipient(ctx, found)
    if not found.texts:
        return None
    action = "delayed" if _delayed(region, ctx.subject) else "failed"
    hits = []
    for addr, texts in found.texts.items():
        diagnostic = " ".join(t for t in texts if t)
        command = found.commands.get(addr, "") or smtp_command(diagnostic) or command_in(diagnostic)
        hits.append(make_hit(addr, diagnostic, action, command=command))
    return hits


def _names_dsn_recipients(ctx: Context) -> bool:
    """A delivery-status part that names recipients has been read already (and said none failed)."""
    return any(
        "@" in b.get("final-recipient", "") or "@" in b.get("original-recipient", "") for b in ctx.dsn_blocks
    )


def _paragraph_of(region: str, addr: str) -> str:
    """The whole paragraph that names `addr` ("User's mailbox is full: <addr>")."""
    for para in _paragraphs(region):
        text = "\n".join(para)
        if addr in text.lower():
            return collapse(text)[:1000]
    return ""


# sendmail's early warning ("Warning: could not send message for past 4 hours", savemail.c / the
# DSN's delay notice): the message is still queued, nothing has failed yet.
_WARNING_SUBJECT_RE = lazy(r"^\s*warning\W+could not send (?:message|mail) for past", re.I)


def _is_delay_warning(ctx: Context) -> bool:
    return bool(_WARNING_SUBJECT_RE.match(ctx.subject))


_DELAY_RE = lazy(
    r"has not yet been delivered|will (?:continue|keep) (?:trying|to try)|will be retried|still trying|"
    r"attempts will continue|this is a warning|"
    r"delivery (?:is|has been) delayed|warning message only|will retry|not (?:yet )?been delivered yet",
    re.I,
)


def _delayed(region: str, subject: str) -> bool:
    # "Warning" alone in a subject is no sign: MDaemon writes "Warning: addr - User unknown!"
    return bool(_DELAY_RE.search(region) or re.search(r"\bdelay(?:ed)?\b", subject, re.I))
