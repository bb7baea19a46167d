"""A faster way to the same `email.message.Message` tree the stdlib's parser builds (compat32).

Why: half of `analyze()`'s time went to `email.feedparser`, which reads a mail one line at a time
through a stack of end-of-part tests, in Python. Here a multipart body is cut at its boundary lines by
one regular-expression search over the whole text, and only header lines are looked at one by one;
the parts become the same `Message` objects with the same headers, payloads, preambles and epilogues,
so everything downstream reads them unchanged.

What "the same" means is the stdlib's behaviour, defects included (RFC 2046 says the line break before
a boundary belongs to the boundary; repeated boundary lines make no empty parts; a part whose start
boundary never comes keeps its text as payload; a close boundary missing leaves the epilogue unset;
multipart/digest parts default to message/rfc822). tests/inbound/test_mime.py compares both trees on
every corpus mail and on thousands of damaged ones. Where this module does not claim to match — text
with carriage returns or the rarer characters `str.splitlines` also breaks lines at — and for
message/delivery-status parts (small; their blank-line blocks follow rules of their own) the stdlib
parses. With MAILFLOW_REFERENCE_PATHS=1 the stdlib parses everything (mailflow/reference.py).

The `Message` internals written here (`_payload`, `set_raw`, `preamble`, `epilogue`) are the ones the
stdlib's own parser writes.
"""

from __future__ import annotations

import email
import re
from email.message import Message
from typing import cast

from mailflow import reference

# A header line or its continuation, as the stdlib's parser tells them from the first body line.
_HEADER_LINES = re.compile(r"(?:(?:From |[\041-\071\073-\176]*:|[\t ])[^\n]*(?:\n|\Z))*")
# Line ends other than "\n" that `str.splitlines` (the stdlib's line reader) would also break at.
_OTHER_LINE_ENDS = re.compile("[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
# One header field (name, value as compat32 keeps it) in a block of header lines with none of the odd
# lines _odd_fields reads.
_FIELD = re.compile(r"^([^:\n]*):[ \t]*([^\n]*(?:\n[ \t][^\n]*)*)", re.MULTILINE)
_ODD_LINE = re.compile(r"^(?:From |:)", re.MULTILINE)
_NESTED = ("message/", "multipart/")
_MAX_DEPTH = 64  # nested message/* and multipart/*: past this, the stdlib takes the part


def message_from_bytes(raw: bytes) -> Message:
    """`email.message_from_bytes(raw)`, built faster where it can be."""
    if reference.ON:
        return email.message_from_bytes(raw)
    return message_from_string(raw.decode("ascii", "surrogateescape"))


def message_from_string(text: str) -> Message:
    """`email.message_from_string(text)`, built faster where it can be."""
    if reference.ON or _OTHER_LINE_ENDS.search(text):
        return email.message_from_string(text)
    return _parse(text, digest_part=False, depth=0)[0]


def _parse(text: str, digest_part: bool, depth: int) -> tuple[Message, Message, bool]:
    """`text` as one message, with the message the stdlib's parser would have made last while
    reading it and whether that one is a multipart (see `_drop_last_line_end`)."""
    if depth > _MAX_DEPTH:
        return _stdlib(text, digest_part)
    msg = Message()
    if digest_part:
        msg.set_default_type("message/rfc822")
    body, content_type = _read_headers(msg, text)
    ctype = _content_type(msg, content_type)
    if ctype == "message/delivery-status":
        return _read_fields(msg, body, text, digest_part)
    maintype = ctype.partition("/")[0]
    if maintype == "message":
        inner, last, multipart = _parse(body, digest_part=False, depth=depth + 1)
        msg.attach(inner)
        return msg, last, multipart
    if maintype == "multipart":
        _read_parts(msg, body, ctype, depth)
        return msg, msg, True
    msg.set_payload(body)
    return msg, msg, False


def _stdlib(text: str, digest_part: bool) -> tuple[Message, Message, bool]:
    msg = email.message_from_string(text)
    if digest_part:
        msg.set_default_type("message/rfc822")
    last = _last_created(msg)
    return msg, last, last.get_content_maintype() == "multipart"


def _content_type(msg: Message, value: str | None) -> str:
    """`msg.get_content_type()` from the header value already in hand."""
    if value is None or _has_surrogates(value):
        return msg.get_content_type()
    ctype = value.partition(";")[0].strip().lower()
    return ctype if ctype.count("/") == 1 else "text/plain"


def _has_surrogates(value: str) -> bool:
    return not value.isascii() and any("\udc80" <= c <= "\udcff" for c in value)


def _read_headers(msg: Message, text: str) -> tuple[str, str | None]:
    """Store the header fields of `text` on `msg`; return the body and the first Content-Type value."""
    end = _HEADER_LINES.match(text).end()  # type: ignore[union-attr]  # matches the empty string too
    body = text[end:]
    if body.startswith("\n"):
        body = body[1:]  # the blank line between header and body belongs to neither
    block = text[:end]
    if block[:1] in (" ", "\t") or _ODD_LINE.search(block):
        fields, body = _odd_fields(msg, block, body)
    else:
        fields = _FIELD.findall(block)
    content_type = None
    for name, value in fields:
        msg.set_raw(name, value)
        if content_type is None and len(name) == 12 and name.lower() == "content-type":
            content_type = value
    return body, content_type


def _odd_fields(msg: Message, block: str, body: str) -> tuple[list[tuple[str, str]], str]:
    """The header lines the one-pattern read does not cover: an mbox "From " line, a field with no
    name, a continuation with no field before it — read line by line, as the stdlib does."""
    lines = block.splitlines(keepends=True)
    fields: list[tuple[str, str]] = []
    name, value = "", ""
    for number, line in enumerate(lines):
        if line[0] in " \t":
            if name:
                value += line
            continue  # a continuation with no header before it is dropped
        if name:
            fields.append((name, value.rstrip("\r\n")))
            name = ""
        if line.startswith("From "):
            if number == 0:
                msg.set_unixfrom(line.rstrip("\n"))
            elif number == len(lines) - 1:
                return fields, line + body  # a "From " line closing the header starts the body
            continue
        colon = line.find(":")
        if colon == 0:
            continue  # no field name: dropped
        name, value = line[:colon], line[colon + 1 :].lstrip(" \t")
    if name:
        fields.append((name, value.rstrip("\r\n")))
    return fields, body


def _read_fields(msg: Message, body: str, text: str, digest_part: bool) -> tuple[Message, Message, bool]:
    """A message/delivery-status body: blocks of fields, one message each, a blank line between
    blocks (another blank line makes an empty block; the last one keeps no line break)."""
    pos, size = 0, len(body)
    block = msg
    while True:
        if body.startswith("\n", pos):
            stop = pos
        else:
            blank = body.find("\n\n", pos)
            stop = blank + 1 if blank >= 0 else size
        block = Message()
        if stop > pos:
            rest, content_type = _read_headers(block, body[pos:stop])
            if content_type is not None and _content_type(block, content_type).startswith(_NESTED):
                return _stdlib(text, digest_part)  # a block that claims parts of its own: not ours
        else:
            rest = ""  # another blank line: an empty block (a hostile report has hundreds of thousands)
        block.set_payload(rest)
        msg.attach(block)
        pos = stop + 1 if stop < size else size
        if pos >= size:
            return msg, block, False


def _read_parts(msg: Message, body: str, ctype: str, depth: int) -> None:
    boundary = msg.get_boundary()
    if boundary is None:
        msg.set_payload(body)
        return
    marks = _boundary_lines(body, "--" + boundary)
    if not marks or marks[0][2]:
        # no start boundary (or the close one first): the text before it is the payload
        msg.set_payload(body[: marks[0][0]] if marks else body)
        msg.epilogue = ""
        return
    preamble = body[: marks[0][0]]
    if preamble:
        msg.preamble = preamble[:-1] if preamble.endswith("\n") else preamble
    digest = ctype == "multipart/digest"
    at, i = marks[0][0], 0
    while True:
        while i < len(marks) and marks[i][0] == at:  # boundary lines in a row make no empty parts
            at = marks[i][1]
            i += 1
        stop = marks[i][0] if i < len(marks) else len(body)
        part, last, multipart = _parse(body[at:stop], digest, depth + 1)
        msg.attach(part)
        _drop_last_line_end(last, multipart)
        if i == len(marks):
            return  # no close boundary: the epilogue stays unset
        if marks[i][2]:
            msg.epilogue = body[marks[i][1] :]
            return
        at = stop


def _boundary_lines(body: str, dashed: str) -> list[tuple[int, int, bool]]:
    """Each line that is `dashed` (the close form with "--" after it), blanks and tabs allowed at
    its end: (where it starts, where the next line starts, is it the close boundary)."""
    marks = []
    size = len(dashed)
    at = body.find(dashed)
    while at >= 0:
        if at == 0 or body[at - 1] == "\n":
            end = at + size
            close = body.startswith("--", end)
            rest = end + 2 if close else end
            line_end = body.find("\n", rest)
            if line_end < 0:
                line_end = len(body)
            if not body[rest:line_end].strip(" \t"):
                marks.append((at, min(line_end + 1, len(body)), close))
        at = body.find(dashed, at + 1)
    return marks


def _drop_last_line_end(last: Message, multipart: bool) -> None:
    """RFC 2046: the line break before a boundary belongs to the boundary. The stdlib takes it from
    the message it made last while reading the part, which is not always the part itself."""
    if multipart:
        if last.epilogue == "":
            last.epilogue = None
        elif last.epilogue is not None and last.epilogue.endswith("\n"):
            last.epilogue = last.epilogue[:-1]
        return
    # the payload as stored (get_payload() would decode stray 8-bit bytes)
    payload = last._payload  # type: ignore[attr-defined]  # noqa: SLF001
    if isinstance(payload, str) and payload.endswith("\n"):
        last.set_payload(payload[:-1])


def _last_created(part: Message) -> Message:
    """The message the stdlib's parser made last while reading `part`: a multipart ends on itself,
    a message/* part on what it holds (a delivery-status part on its last block)."""
    while part.get_content_maintype() == "message":
        payload = part.get_payload()
        if not isinstance(payload, list) or not payload:
            break
        part = cast(Message, payload[-1])
    return part
