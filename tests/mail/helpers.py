"""Helpers of the outbound-mail tests: a scripted SMTP sink (real aiosmtpd) and mail queueing the way the
application does it."""

from __future__ import annotations

import asyncio
import email
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP

from mailflow.context import AppContext
from mailflow.mail.capture import LocalController
from mailflow.mail.outbox import enqueue
from mailflow.mail.render import sample_context
from mailflow.models import OutboxMessage


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed: EmailMessage = email.message_from_bytes(self.raw, policy=default)
        return parsed


@dataclass
class ScriptedSink:
    """An SMTP server whose answers a test scripts: per recipient (RCPT, DATA, the content's reply), per
    sender (MAIL FROM), and the faults real relays show — a reply followed by hanging up, a DATA refused
    with the transaction left open, a failed transaction the server does not reset. ``pipelining``
    offers PIPELINING in the EHLO reply (aiosmtpd reads commands one by one either way)."""

    received: list[Received] = field(default_factory=list)
    mail_replies: dict[str, list[str]] = field(default_factory=dict)  # by sender, one per attempt
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_replies: dict[str, list[str]] = field(default_factory=dict)  # the content's reply, per attempt
    drop_in_data: set[str] = field(default_factory=set)
    hang_up_after: set[str] = field(default_factory=set)  # scripted replies to these end the session
    refuse_data: dict[str, list[str]] = field(default_factory=dict)  # to DATA itself, transaction kept
    keep_transaction: set[str] = field(default_factory=set)  # a refused content leaves it open
    pipelining: bool = False
    sessions: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname
        self.sessions += 1
        if self.pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    def _scripted(self, server: Any, key: str, reply: str) -> str:
        if key in self.hang_up_after:
            self.hang_up_after.discard(key)
            # After the reply is written: the transport flushes what it holds before it closes.
            asyncio.get_running_loop().call_soon(server.transport.close)
        return reply

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        queue = self.mail_replies.get(address)
        if queue:
            return self._scripted(server, address, queue.pop(0))
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in self.rcpt_replies:
            return self._scripted(server, address, self.rcpt_replies[address])
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        to = envelope.rcpt_tos[0]
        if to in self.drop_in_data:
            self.drop_in_data.discard(to)
            server.transport.close()  # the line goes down after the data, before any reply
            return "250 never delivered to the client"
        queue = self.data_replies.get(to)
        if queue:
            if to in self.keep_transaction:
                server.keep_transaction = True
            return self._scripted(server, to, queue.pop(0))
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                          envelope.original_content))
        return "250 2.0.0 Ok: queued as TEST"

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if address in r.rcpt_tos]


class ScriptedSMTP(SMTP):
    """aiosmtpd's protocol with two faults of real relays it cannot script through handler hooks: DATA
    refused before any content with the transaction left open (as a data restriction does), and a
    transaction not reset after its content was refused. Either way the next MAIL without RSET gets
    aiosmtpd's own "503 Error: nested MAIL command"."""

    keep_transaction = False

    async def smtp_DATA(self, arg: str) -> None:
        sink: ScriptedSink = self.event_handler
        recipients = self.envelope.rcpt_tos if self.envelope else []
        queue = sink.refuse_data.get(recipients[0]) if recipients else None
        if queue:
            await self.push(queue.pop(0))
            return
        await super().smtp_DATA(arg)

    def _set_post_data_state(self) -> None:
        if self.keep_transaction:
            self.keep_transaction = False
            return
        super()._set_post_data_state()


class ScriptedController(LocalController):
    def factory(self) -> SMTP:
        return ScriptedSMTP(self.handler, **self.SMTP_kwargs)


# A relay without PIPELINING and one that offers it. The relay's side is the same whatever the database:
# the pipelined variant runs in the SQLite pass only.
EITHER_WAY = [pytest.param(False, id="lockstep"), pytest.param(True, id="pipelining", marks=pytest.mark.once)]


def serve(handler: ScriptedSink) -> Iterator[ScriptedSink]:
    """A fixture's body: the sink running for the test, stopped after it."""
    controller = start_sink(handler)
    yield handler
    controller.stop()


def start_sink(handler: ScriptedSink, **kwargs: Any) -> ScriptedController:
    """The scripted sink on a free port of 127.0.0.1 (``handler.port`` set)."""
    kwargs.setdefault("server_hostname", "sink.mailflow.test")
    controller = ScriptedController(handler, hostname="127.0.0.1", port=0, **kwargs)
    controller.start()
    handler.port = controller.port
    return controller


def queue_mail(ctx: AppContext, to: str, template: str = "registration-received", name: str = "王小明",
               context: dict[str, Any] | None = None) -> int:
    with ctx.db.session() as session:
        row = enqueue(session, template, to, message_id_domain=ctx.settings.mail.message_id_domain,
                      to_name=name, context=context or sample_context(template, ctx.settings))
        return row.id


def outbox_row(ctx: AppContext, outbox_id: int) -> OutboxMessage:
    with ctx.db.session() as session:
        row = session.get(OutboxMessage, outbox_id)
        assert row is not None
        return row
