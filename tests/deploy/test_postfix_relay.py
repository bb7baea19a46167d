"""docs/DEPLOY.md §4 with a real Postfix: mailflow in relay mode hands its mails to Postfix, which relays
them (envelope sender bounce+TAG@bounces.twport.com.tw, headers untouched: the DKIM signature still
verifies) to a counting sink; a recipient the sink refuses makes Postfix write a DSN to that return path,
which the shipped transport map routes to mailflow's inbound SMTP server, which suppresses the address
and opens a hard_bounce item for the right outbox row. All on 127.0.0.1, every wait bounded."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes
from pathlib import Path

import dkim
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select

from mailflow.context import AppContext
from mailflow.inbound.smtp_server import InboundServer, start_inbound_server
from mailflow.mail.dispatch import run_dispatch
from mailflow.mail.outbox import enqueue
from mailflow.mail.returnpath import make_return_path
from mailflow.models import Account, InboundMessage, OutboxMessage, OutboxStatus, SupportKind
from mailflow.timeutil import now
from tests.deploy.postfix import PostfixInstance, delivered_to, running_postfix
from tests.factories import Applicant, add_applicant
from tests.inbound.test_intake_helpers import items, suppressed
from tests.peers import wait_until
from tests.scale.sink import CountingHandler, CountingSink

pytestmark = pytest.mark.once

SELECTOR = "mfpostfix"
REFUSED = "nobody@example.com"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes


class RelaySink(CountingHandler):
    """The counting sink, keeping each envelope, and refusing some recipients for good at RCPT."""

    def __init__(self, refuse: set[str]) -> None:
        super().__init__()
        self.refuse = {address.lower() for address in refuse}
        self.envelopes: list[Received] = []

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if address.lower() in self.refuse:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.lock:
            self.envelopes.append(Received(envelope.mail_from or "", list(envelope.rcpt_tos),
                                           envelope.original_content or b""))
        return await super().handle_DATA(server, session, envelope)



@pytest.fixture
def dkim_record(ctx: AppContext, tmp_path: Path) -> bytes:
    """Sign mails with a fresh key; the TXT record a receiver would look up."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "dkim.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()))
    ctx.settings = ctx.settings.updated(mail={
        "dkim_key": str(tmp_path / "dkim.pem"), "dkim_selector": SELECTOR})
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


@pytest.fixture
def sink() -> Iterator[CountingSink]:
    counting = CountingSink()
    counting.handler = RelaySink(refuse={REFUSED})
    with counting:
        yield counting


@pytest.fixture
def inbound(ctx: AppContext) -> Iterator[InboundServer]:
    # a free port; Postfix's transport map is written with it
    ctx.settings = ctx.settings.updated(inbound={"smtp_host": "127.0.0.1", "smtp_port": 0})
    server = start_inbound_server(ctx)
    yield server
    server.stop()


@pytest.fixture
def postfix(ctx: AppContext, sink: CountingSink, inbound: InboundServer) -> Iterator[PostfixInstance]:
    with running_postfix(sink.port, inbound.port) as instance:
        # mailflow in relay mode, as /etc/mailflow/mailflow.env sets it up, pointed at this Postfix.
        ctx.settings = ctx.settings.updated(
            smtp={"mode": "relay", "host": instance.host, "port": instance.port, "timeout_seconds": 10},
            security={"secret_key": "postfix-test-secret-key-0123456789"})
        yield instance


def queue_mail(ctx: AppContext, to: str, who: Applicant | None = None) -> OutboxMessage:
    with ctx.db.session() as session:
        return enqueue(session, "registration-received", to,
                       message_id_domain=ctx.settings.mail.message_id_domain, to_name="王小明",
                       context={"name": "王小明", "account": "example1234", "ubn": "12345678",
                                "company_name": "臺灣港務股份有限公司基隆分公司",
                                "submitted_at": now().isoformat()},
                       account_id=who.account_id if who else None,
                       application_id=who.application_id if who else None)


def statuses(ctx: AppContext) -> dict[int, str]:
    with ctx.db.session() as session:
        return dict(session.execute(select(OutboxMessage.id, OutboxMessage.status)).tuples().all())


def test_relay_through_postfix_keeps_return_path_and_headers(ctx: AppContext, sink: CountingSink,
                                                             postfix: PostfixInstance,
                                                             dkim_record: bytes) -> None:
    mails = [queue_mail(ctx, f"applicant{i}@example.com") for i in range(3)]
    report = run_dispatch(ctx, threading.Event())
    assert report.claimed == 3
    assert statuses(ctx) == {m.id: OutboxStatus.SENT for m in mails}
    wait_until(lambda: sink.total() == 3, 20, "3 mails relayed to the sink",
               context=lambda: postfix.log()[-4000:])
    handler = sink.handler
    assert isinstance(handler, RelaySink)
    by_id = {message_from_bytes(r.raw)["Message-ID"]: r for r in handler.envelopes}
    assert set(by_id) == {m.message_id for m in mails}
    asked: list[bytes] = []

    def dns(name: bytes, timeout: int = 5) -> bytes:
        asked.append(name)
        return dkim_record if name == f"{SELECTOR}._domainkey.twport.com.tw.".encode() else b""

    for mail in mails:
        got = by_id[mail.message_id]
        assert got.mail_from == make_return_path(ctx.settings, mail.id)
        assert got.mail_from.endswith("@bounces.twport.com.tw") and got.mail_from.startswith("bounce+")
        assert got.rcpt_tos == [mail.to_address]
        # Postfix added its Received line and nothing else that matters: the signed headers and the
        # body are byte for byte what mailflow signed.
        assert got.raw.startswith(b"Received: from ")
        assert dkim.verify(got.raw, dnsfunc=dns), got.raw[:2000]
    assert asked
    assert delivered_to(postfix.log(), sink.port) == 3


def test_refused_recipient_bounces_through_postfix_back_to_mailflow(ctx: AppContext, sink: CountingSink,
                                                                    inbound: InboundServer,
                                                                    postfix: PostfixInstance) -> None:
    gone = add_applicant(ctx, "example1234", REFUSED)
    fine = add_applicant(ctx, "example5678", "lin@example.com")
    bounced = queue_mail(ctx, gone.email, gone)
    delivered = queue_mail(ctx, fine.email, fine)
    run_dispatch(ctx, threading.Event())
    # Postfix took both: the refusal comes later, from its smtp client, as a DSN.
    assert statuses(ctx) == {bounced.id: OutboxStatus.SENT, delivered.id: OutboxStatus.SENT}

    def hard_bounce_opened() -> bool:
        with ctx.db.session() as session:
            return bool(items(session, SupportKind.HARD_BOUNCE))

    wait_until(hard_bounce_opened, 25, "the DSN routed to mailflow and processed",
               context=lambda: postfix.log()[-4000:])
    inbound.drain()
    assert set(sink.received) == {delivered.message_id}
    with ctx.db.session() as session:
        [item] = items(session, SupportKind.HARD_BOUNCE)
        assert (item.outbox_id, item.account_id) == (bounced.id, gone.account_id)
        assert suppressed(session, gone.email) and not suppressed(session, fine.email)
        account = session.get(Account, gone.account_id)
        assert account is not None and account.email_undeliverable
        [row] = session.execute(select(InboundMessage)).scalars().all()
        assert (row.source, row.kind, row.outbox_id) == ("smtp", "bounce", bounced.id)
        assert row.envelope_to == make_return_path(ctx.settings, bounced.id)
        assert row.envelope_from.strip("<>") == ""  # a DSN comes from the null sender
    log = postfix.log()
    assert "status=bounced" in log and REFUSED in log
    assert delivered_to(log, inbound.port) == 1  # the DSN, through the transport map
