"""Helpers of the outbound-mail tests: a scripted SMTP sink (real aiosmtpd) and mail queueing the way the
application does it."""

from __future__ import annotations

import email
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default
from typing import Any

from mailflow.context import AppContext
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
    """An SMTP server whose answers a test scripts per recipient address."""

    received: list[Received] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_replies: dict[str, list[str]] = field(default_factory=dict)
    drop_in_data: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
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
            return queue.pop(0)
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                          envelope.original_content))
        return "250 2.0.0 Ok: queued as TEST"

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if address in r.rcpt_tos]


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
