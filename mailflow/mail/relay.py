"""The SMTP session with the relay (or the capture server): opening it, sending mails over it, and what
each reply means for a mail.

Opening (connect, EHLO, STARTTLS, AUTH) is smtplib's. A failure there comes before any recipient is
named, so whatever its code it is the relay's or our configuration's trouble: the mail waits for a retry
and the tick stops (``link_down``).

Sending is one SMTP transaction per mail (MAIL FROM differs per mail: the signed return path). Where the
relay offers PIPELINING (RFC 2920) the commands go in groups, one write and one read of replies per mail:

    [content of the previous mail + "."]  [RSET, after a failed envelope]  MAIL  RCPT  DATA

The content may open a group and DATA must close one (RFC 2920 3.1), so this is the tightest legal
grouping; smtplib's own ``sendmail`` waits for each of the four replies in turn. Without PIPELINING every
command waits for its reply (lockstep) and a failed transaction is always followed by RSET. In a pipelined
group the next MAIL is already on its way when a content reply says the previous mail failed; a server
that then still holds the old transaction answers "503 nested MAIL command", which is session trouble
(below), so that mail is sent again on a fresh session rather than failed.

What a reply means for the mail (the first refusal of MAIL, RCPT, DATA decides; the 503s that follow a
refused command in a pipelined group are its echo):

- 421 (closing) and 500, 502, 503, 504 (the session lost its way: "503 nested MAIL command") at any step:
  **session trouble**, nothing about the recipient. The session is dropped, a new one opened, and the mail
  sent again — at most SESSION_TRIES times in a tick, then it waits for a retry. RSET refused: the same.
- MAIL refused otherwise: retry (the relay refused our sender; no recipient was named).
- RCPT, DATA or the content refused: 4xx retry, 5xx failed (the recipient's permanent failure).
- The connection breaks: a mail whose content was written but not answered may have been delivered, so
  it is a retry ("network error": sent again later, never lost); mails whose content was not written yet
  are sent again at once on a new session.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import socket
import ssl
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Generic, TypeVar

from mailflow.config import Settings
from mailflow.mail.render import is_plain_address
from mailflow.models import OutboxStatus

K = TypeVar("K")

SESSION_TRIES = 2  # session troubles one mail may meet in a tick before it waits for a retry
REOPENS_PER_TICK = 5  # sessions re-opened in one tick before the rest of the tick waits (link down)
SESSION_TROUBLE = frozenset({421, 500, 502, 503, 504})
STEPS = ("MAIL", "RCPT", "DATA")
ACCEPTED = ((250,), (250, 251), (354,))  # what each step answers when it goes on
_LINE_START_DOT = re.compile(rb"(?m)^\.")  # dot-stuffing (RFC 5321 4.5.2), as smtplib does it


@dataclass(frozen=True)
class Outcome:
    status: str  # sent | retry | failed | suppressed
    code: int | None
    detail: str
    link_down: bool = False  # no SMTP session could be had: no mail can go this tick


def reply_text(code: int, reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return f"{code} {text}".strip()


def classify(code: int, reply: bytes | str) -> Outcome:
    """A reply about the recipient or the content: 2xx sent, 5xx failed, anything else retry."""
    detail = reply_text(code, reply)
    if 200 <= code < 300:
        return Outcome(OutboxStatus.SENT, code, detail)
    if 500 <= code < 600:
        return Outcome(OutboxStatus.FAILED, code, detail)
    return Outcome(OutboxStatus.RETRY, code, detail)  # 4xx and anything unexpected: try again later


@lru_cache(maxsize=1)
def helo_name() -> str:
    return socket.getfqdn() or "localhost"


@dataclass(frozen=True)
class Outgoing:
    """One mail for the relay: envelope and wire bytes."""

    sender: str
    recipient: str
    raw: bytes


@dataclass
class _Mail(Generic[K]):
    key: K
    mail: Outgoing
    tries: int = 0  # session troubles met so far this tick


class _Lost:
    """Why the connection broke before every reply of a group was read."""

    def __init__(self, cause: BaseException) -> None:
        self.cause = cause

    def __str__(self) -> str:
        return f"{type(self.cause).__name__}: {self.cause}"


def content_bytes(raw: bytes) -> bytes:
    """The message as DATA carries it: dot-stuffed (a pass over the whole message only when a line starts
    with a dot: never, in our mails), CRLF-ended, then the lone dot."""
    body = _LINE_START_DOT.sub(b"..", raw) if raw.startswith(b".") or b"\n." in raw else raw
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return body + b".\r\n"


def _path(address: str) -> str:
    # A plain address is written as <address>: what smtplib's quoteaddr makes of it, without its parse.
    return f"<{address}>" if is_plain_address(address) else smtplib.quoteaddr(address)


class SmtpLink:
    """The SMTP session of one dispatch tick: opened on first use, re-opened after trouble."""

    def __init__(self, settings: Settings, port: int) -> None:
        self.settings = settings
        self.port = port  # smtp.port, or in capture mode the capture server's (AppContext.smtp_port)
        self.conn: smtplib.SMTP | None = None
        self.pipelining = False
        self.step = ""  # the session step under way while opening, named in the failure's detail
        self.opened = 0
        self.reset_due = False  # the last transaction failed: RSET before the next MAIL

    @property
    def target(self) -> str:
        smtp = self.settings.smtp
        return f"{smtp.host if smtp.mode == 'relay' else '127.0.0.1'}:{self.port}"

    # --- opening and closing ---------------------------------------------------------------------------

    def _open(self) -> smtplib.SMTP:
        smtp = self.settings.smtp
        relay = smtp.mode == "relay"
        self.step = "connect"
        conn = smtplib.SMTP(smtp.host if relay else "127.0.0.1", self.port, local_hostname=helo_name(),
                            timeout=smtp.timeout_seconds)
        try:
            self.step = "EHLO"
            conn.ehlo()
            if relay and smtp.starttls:
                self.step = "STARTTLS"
                conn.starttls(context=ssl.create_default_context())
                conn.ehlo()
            if relay and smtp.username:
                self.step = "AUTH"
                conn.login(smtp.username, smtp.password)
        except BaseException:
            conn.close()
            raise
        return conn

    def connect(self) -> Outcome | None:
        """Open the session if it is not open; on failure the retry outcome (``link_down``) that stands
        for every mail of the tick. A 5xx here (535 refused login, 530 TLS required) says nothing about
        the recipient, so it is a retry like a refused connection, not a permanent failure."""
        if self.conn is not None:
            return None
        if self.opened > REOPENS_PER_TICK:
            return Outcome(OutboxStatus.RETRY, None, f"relay {self.target}: {self.opened - 1} sessions broke "
                           "in this tick; the rest waits for a retry", link_down=True)
        self.opened += 1
        try:
            self.conn = self._open()
        except smtplib.SMTPResponseException as exc:
            detail = f"relay {self.target} refused {self.step}: {reply_text(exc.smtp_code, exc.smtp_error)}"
            return Outcome(OutboxStatus.RETRY, exc.smtp_code, detail, link_down=True)
        except (OSError, smtplib.SMTPException) as exc:  # refused connection, timeout, TLS handshake
            detail = f"network error: relay {self.target} at {self.step}: {type(exc).__name__}: {exc}"
            return Outcome(OutboxStatus.RETRY, None, detail, link_down=True)
        self.pipelining = self.conn.has_extn("pipelining")
        self.reset_due = False
        return None

    def drop(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self.conn.quit()
            self.drop()

    # --- sending -----------------------------------------------------------------------------------------

    def send(self, sender: str, recipient: str, raw: bytes) -> Outcome:
        """One mail; never raises for SMTP or network trouble."""
        [(_, outcome)] = list(self.send_all([(None, Outgoing(sender, recipient, raw))]))
        return outcome

    def send_all(self, mails: Iterable[tuple[K, Outgoing]],
                 keep_going: Callable[[], bool] = lambda: True) -> Generator[tuple[K, Outcome], None, None]:
        """Send ``mails`` in order, yielding each one's outcome as its last reply arrives (a pipelined
        mail's with the next mail's group). ``keep_going`` is asked before each mail is begun; once it
        says no, the mails not begun get no outcome (the caller hands them back), nor does one whose DATA
        was accepted but whose content was not written: the session is dropped, which aborts it. After
        an outcome with ``link_down`` nothing more is sent."""
        source = iter(mails)
        again: deque[_Mail[K]] = deque()  # mails to send again after session trouble, first
        pending: _Mail[K] | None = None  # DATA accepted (pipelined): its content opens the next group
        try:
            while (current := self._next(again, source, keep_going)) is not None:
                down = self.connect()  # open already while a mail is pending
                if down is not None:
                    yield current.key, down
                    return
                refused = self._refuse_unsendable(current.mail)
                if refused is not None:
                    yield current.key, refused
                    continue
                pending = yield from self._round(pending, current, again)
            if pending is not None and keep_going():
                yield from self._round(pending, None, again)
                pending = None
        finally:
            if pending is not None:  # DATA accepted, content never written: dropping aborts it
                self.drop()

    @staticmethod
    def _next(again: deque[_Mail[K]], source: Iterator[tuple[K, Outgoing]],
              keep_going: Callable[[], bool]) -> _Mail[K] | None:
        if not keep_going():
            return None
        if again:
            return again.popleft()
        item = next(source, None)
        return None if item is None else _Mail(item[0], item[1])

    def _refuse_unsendable(self, mail: Outgoing) -> Outcome | None:
        assert self.conn is not None
        if any(ch in address for address in (mail.sender, mail.recipient) for ch in "\r\n\0"):
            return Outcome(OutboxStatus.FAILED, None, "an address with a line break cannot go into SMTP")
        if not mail.recipient.isascii() and not self.conn.has_extn("smtputf8"):
            return Outcome(OutboxStatus.FAILED, None, "the relay does not accept non-ASCII addresses")
        return None

    def _round(self, pending: _Mail[K] | None, current: _Mail[K] | None,
               again: deque[_Mail[K]]) -> Generator[tuple[K, Outcome], None, _Mail[K] | None]:
        """One group: the pending mail's content, RSET if due, the current mail's envelope; then what the
        replies mean. Returns the mail whose content is now pending (pipelined), if any."""
        commands = [content_bytes(pending.mail.raw)] if pending is not None else []
        reset = current is not None and self.reset_due
        if current is not None:
            commands += [b"RSET\r\n"] * reset + self._envelope(current.mail)
        replies, lost = self._exchange(commands)
        if pending is not None:
            reply = replies.pop(0) if replies else None
            yield from self._judge_content(pending, reply, lost, again, alone=current is None)
        if current is None:
            if lost is not None:
                self.drop()
            return None
        if self.conn is None:  # the session ended at the content: the envelope goes again on a new one
            again.append(current)
            return None
        if reset and replies:
            self.reset_due = False
            code, text = replies.pop(0)
            if code != 250:
                self.drop()
                yield from self._trouble(current, code, text, "RSET", again)
                return None
        return (yield from self._judge_envelope(current, replies, lost, again))

    def _envelope(self, mail: Outgoing) -> list[bytes]:
        utf8 = not (mail.sender.isascii() and mail.recipient.isascii())
        encoding = "utf-8" if utf8 else "ascii"
        return [f"MAIL FROM:{_path(mail.sender)}{' SMTPUTF8' if utf8 else ''}\r\n".encode(encoding),
                f"RCPT TO:{_path(mail.recipient)}\r\n".encode(encoding), b"DATA\r\n"]

    def _exchange(self, commands: list[bytes]) -> tuple[list[tuple[int, bytes]], _Lost | None]:
        """Each command's reply: pipelined, all written at once and then read; else one by one. A broken
        connection ends the exchange with the replies read so far."""
        conn = self.conn
        assert conn is not None
        replies: list[tuple[int, bytes]] = []
        try:
            if self.pipelining:
                conn.send(b"".join(commands))
                for _ in commands:
                    replies.append(conn.getreply())
            else:
                for command in commands:
                    conn.send(command)
                    replies.append(conn.getreply())
        except (OSError, smtplib.SMTPException) as exc:
            return replies, _Lost(exc)
        return replies, None

    def _judge_content(self, mail: _Mail[K], reply: tuple[int, bytes] | None, lost: _Lost | None,
                       again: deque[_Mail[K]], alone: bool) -> Iterator[tuple[K, Outcome]]:
        if reply is None:  # written, never answered: it may have been delivered; later, not now
            self.drop()
            yield mail.key, Outcome(OutboxStatus.RETRY, None, f"network error: {lost}")
            return
        code, text = reply
        if code in SESSION_TROUBLE:  # 421 after the content: not taken, and the session is over
            self.drop()
            yield from self._trouble(mail, code, text, "the content", again)
            return
        outcome = classify(code, text)
        if outcome.status != OutboxStatus.SENT and alone:
            # RSET before the next MAIL. (Pipelined, the next MAIL went with this content; a server that
            # still holds the failed transaction answers it 503, which is session trouble.)
            self.reset_due = True
        yield mail.key, outcome

    def _judge_envelope(self, mail: _Mail[K], replies: list[tuple[int, bytes]], lost: _Lost | None,
                        again: deque[_Mail[K]]) -> Generator[tuple[K, Outcome], None, _Mail[K] | None]:
        for step, accepted, (code, text) in zip(STEPS, ACCEPTED, replies, strict=False):
            if code in accepted:
                continue
            self.reset_due = True
            if code in SESSION_TROUBLE:
                self.drop()
                yield from self._trouble(mail, code, text, step, again)
                return None
            if lost is not None or replies[-1][0] == 354:  # DATA accepted after a refusal: abort it
                self.drop()
            if step == "MAIL":  # no recipient was named yet: the relay's trouble with our sender
                detail = f"relay refused the sender: {reply_text(code, text)}"
                yield mail.key, Outcome(OutboxStatus.RETRY, code, detail)
            else:
                yield mail.key, classify(code, text)
            return None
        if lost is not None:  # no content was written, so nothing was delivered: send it again
            self.drop()
            yield from self._trouble(mail, None, str(lost), "the envelope", again)
            return None
        if self.pipelining:
            return mail
        yield from self._round(mail, None, again)  # lockstep: the content at once
        return None

    def _trouble(self, mail: _Mail[K], code: int | None, text: bytes | str, step: str,
                 again: deque[_Mail[K]]) -> Iterator[tuple[K, Outcome]]:
        """Session trouble met by ``mail``: send it again on a new session, after SESSION_TRIES retry."""
        mail.tries += 1
        if mail.tries < SESSION_TRIES:
            again.append(mail)
            return
        said = reply_text(code, text) if code is not None else f"network error: {text!s}"
        detail = f"session trouble at {step} ({said}), {mail.tries} times this tick"
        yield mail.key, Outcome(OutboxStatus.RETRY, code, detail)

