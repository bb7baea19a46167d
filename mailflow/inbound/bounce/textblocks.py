"""Building blocks for detectors of plain-text bounce notices.

Most MTAs write "address line, then a few lines of why" between a fixed opening
sentence and a fixed line before the returned message.  Detectors describe
their markers and address-line pattern; this module cuts and splits the text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from mailflow.inbound.bounce.mailtext import (
    ADDRESS_RE,
    clean_address,
    collapse,
    find_reply_code,
    find_status,
)
from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.patterns import LazyPattern, lazy


def between(text: str, starts: Iterable[str], ends: Iterable[str], *, keep_start: bool = False) -> str:
    """Text after the first start marker found (case-insensitive) up to the first end marker.

    With no start marker found the whole text is used; markers are plain strings.
    """
    low = text.lower()
    begin = 0
    for marker in starts:
        idx = low.find(marker.lower())
        if idx >= 0:
            begin = idx if keep_start else idx + len(marker)
            break
    else:
        starts_list = list(starts)
        if starts_list:
            return ""
    end = len(text)
    for marker in ends:
        idx = low.find(marker.lower(), begin)
        if 0 <= idx < end:
            end = idx
    return text[begin:end]


def split_blocks(text: str, address_line: LazyPattern) -> list[tuple[str, list[str]]]:
    """Split at lines matching `address_line` (group 1 = address); later lines join its block."""
    blocks: list[tuple[str, list[str]]] = []
    for line in text.split("\n"):
        m = address_line.match(line)
        if m:
            addr = clean_address(m.group(1))
            if "@" in addr:
                rest = line[m.end() :].strip()
                blocks.append((addr, [rest] if rest else []))
                continue
        if blocks:
            blocks[-1][1].append(line)
    return blocks


def hits_from_blocks(blocks: list[tuple[str, list[str]]], action: str = "failed") -> list[Hit]:
    hits: list[Hit] = []
    for addr, lines in blocks:
        diag = collapse(" ".join(lines))
        hits.append(make_hit(addr, diag, action))
    return hits


def make_hit(address: str, diagnostic: str, action: str = "failed", **extra: str) -> Hit:
    diagnostic = collapse(diagnostic)
    return Hit(
        address=clean_address(address),
        action=action,
        status=find_status(diagnostic),
        reply_code=find_reply_code(diagnostic),
        diagnostic=diagnostic,
        **extra,
    )


def addresses_in(text: str) -> list[str]:
    seen: list[str] = []
    for m in ADDRESS_RE.finditer(text):
        addr = clean_address(m.group(0))
        if addr not in seen:
            seen.append(addr)
    return seen


def smtp_command(text: str) -> str:
    """The SMTP command a diagnostic says the error came after ('' if none)."""
    low = text.lower()
    if "does not like recipient" in low or "[rcpt_to]" in low or "invalid recipient: <" in low:
        # qmail-remote's "... does not like recipient."; Yahoo's "[RCPT_TO]" tag; OpenSMTPD's smtpd
        # answers RCPT TO with "550 Invalid recipient: <addr>" (the bounce lab shows it, test_lab.py)
        return "RCPT"
    if "after end of data" in low:
        return "DATA"
    for phrase, command in _QMAIL_REMOTE:
        if phrase in low:
            return command
    sent = _SENT_RE.findall(low) if ">>>" in low else []  # the last command sent was answered
    m = _AFTER_RE.search(low)
    if m is None and not sent:
        return ""
    word = (m.group(1) if m else sent[-1]).upper()
    for cmd in ("HELO", "EHLO", "MAIL", "RCPT", "DATA", "STARTTLS", "AUTH"):
        if cmd in word:
            return cmd
    return ""


# qmail 1.03 qmail-remote.c names the step of the session that failed in its own words.
_QMAIL_REMOTE = (
    ("but greeting failed", "CONN"),
    ("but my name was rejected", "HELO"),
    ("but sender was rejected", "MAIL"),
    ("failed on data command", "DATA"),
    ("failed after i sent the message", "DATA"),
)

# Matched against lower-cased text: a case-blind pattern scans several times slower.
_AFTER_RE = lazy(
    r"(?:in reply to|after|while sending|response to|did not like our|following)\s+(?:end of\s+)?"
    r"(?:the\s+)?(helo|ehlo|mail from|mail|rcpt to|rcpt|data|final data|starttls)"
)
_SENT_RE = lazy(r"^>>>\s*(helo|ehlo|mail|rcpt|data|starttls)", re.M)


def first_address_in(text: str) -> str:
    m = ADDRESS_RE.search(text)
    return clean_address(m.group(0)) if m else ""


# SMTP commands in the order a session sends them; the latest one named in a reply is
# the one it answered ("... after RCPT TO ... during DATA" -> DATA).
_SESSION_ORDER = ("HELO", "EHLO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA", "QUIT")
_COMMAND_WORD_RE = lazy(
    r"(?<![0-9A-Za-z@.`_-])(?:(HELO|EHLO|STARTTLS|RCPT|DATA|QUIT)(?![0-9A-Za-z@`_])"
    r"|(AUTH (?:PLAIN|LOGIN|CRAM-|DIGEST-)|MAIL F))"
)


def command_in(text: str) -> str:
    """The SMTP command an upper-case command word in `text` names ('' if none)."""
    best = -1
    for m in _COMMAND_WORD_RE.finditer(text[:4000]):
        word = (m.group(1) or m.group(2)).split(" ")[0]
        best = max(best, _SESSION_ORDER.index(word))
    return _SESSION_ORDER[best] if best >= 0 else ""
