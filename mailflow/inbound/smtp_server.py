"""The inbound SMTP server (aiosmtpd) that receives bounces to bounce+TAG@ addresses and replies.

Only our own domains are accepted as recipients (mail.bounce_domain, the domain of mail.from and of
mail.reply_address): anything else is 550, so this is never an open relay. Mails over
inbound.max_message_bytes are refused with 552. A mail is committed to the database (store) before `250`
is answered; when it cannot be stored the answer is 451 and the sending MTA tries again later. The mails
of concurrent sessions are committed together (`GroupStore`: one transaction, one WAL flush, for every
mail that arrived while the previous commit ran), each answered once the commit holding it is done.
Processing (route) happens after the answer, on a thread of its own, a batch at a time
(`RouteQueue`); while mails keep arriving it waits a little (at most MAX_DEFER_SECONDS) so that the
intake keeps the CPU.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from concurrent.futures import Future, InvalidStateError
from email.utils import parseaddr
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession

from mailflow.config import Settings
from mailflow.context import AppContext
from mailflow.db import Database
from mailflow.inbound import route
from mailflow.inbound.store import Incoming, StoredMail, Writer
from mailflow.models import InboundStatus

log = logging.getLogger(__name__)

QUIET_SECONDS = 0.05
MAX_DEFER_SECONDS = 10.0
BATCH_MAILS = 100
BATCH_BYTES = 16 * 1024 * 1024


def accepted_domains(settings: Settings) -> frozenset[str]:
    domains = {settings.mail.bounce_domain}
    for value in (settings.mail.from_, settings.mail.reply_address):
        address = parseaddr(value)[1]
        if "@" in address:
            domains.add(address.rsplit("@", 1)[1])
    return frozenset(d.strip().lower() for d in domains if d.strip())


class GroupStore:
    """Group commit: one writer thread stores the mails handed to it, all those waiting (up to
    BATCH_MAILS / BATCH_BYTES) in one transaction. A session waits for the commit holding its mail and
    only then answers 250; one commit per mail made every session wait its turn for the disk's flush
    (PostgreSQL: one WAL flush per mail, bench/inbound.py). The thread stores through a store.Writer
    (PostgreSQL: one INSERT statement on a connection of its own, in autocommit)."""

    def __init__(self, db: Database) -> None:
        self.writer = Writer(db)  # used on the writer thread only
        self._queue: queue.SimpleQueue[tuple[Incoming, Future[StoredMail]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="inbound-store", daemon=True)
        self._thread.start()

    def submit(self, mail: Incoming) -> Future[StoredMail]:
        """The row of ``mail`` once committed (the future fails when it could not be stored)."""
        future: Future[StoredMail] = Future()
        self._queue.put((mail, future))
        return future

    def close(self) -> None:
        """Store what was handed over, then end the writer."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        try:
            self._take()
        finally:
            self.writer.close()

    def _take(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, size, closing = [first], len(first[0].raw), False
            while len(batch) < BATCH_MAILS and size < BATCH_BYTES:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    closing = True
                    break
                batch.append(more)
                size += len(more[0].raw)
            self._store(batch)
            if closing:
                return

    def _store(self, batch: list[tuple[Incoming, Future[StoredMail]]]) -> None:
        try:
            stored = self.writer.store([mail for mail, _ in batch])
        except Exception as exc:
            if len(batch) > 1:
                # One mail the database refuses must not cost the others their 250: each on its own.
                for one in batch:
                    self._store([one])
                return
            _settle(batch[0][1], exception=exc)
            return
        for (_, future), row in zip(batch, stored, strict=True):
            _settle(future, row)


def _settle(future: Future[StoredMail], row: StoredMail | None = None, *,
            exception: BaseException | None = None) -> None:
    """Answer a session's wait; a session gone meanwhile (its wait cancelled) needs no answer — its mail,
    when stored, is finished by route.process_pending, and the sender, never told 250, sends it again."""
    try:
        if exception is not None:
            future.set_exception(exception)
        elif row is not None:
            future.set_result(row)
    except InvalidStateError:
        pass


class RouteQueue:
    """Stored mails waiting for route.process_batch on one thread, a batch at a time, held back while
    mails keep arriving: senders wait on the socket for their answer, our own processing can wait a
    moment (never longer than MAX_DEFER_SECONDS, so a steady stream is processed all the same). On 2
    cores, processing alongside a burst of DATA took the CPU the intake needed (bench/inbound.py)."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.last_data = 0.0  # when the latest DATA began or ended (time.monotonic)
        # Mails between DATA and their answer: while any waits for its commit the intake is busy, even
        # when no byte moves (a commit may take longer than QUIET_SECONDS on a busy disk).
        self.in_flight = 0
        self._cond = threading.Condition()
        self._waiting: list[tuple[int, bytes, float]] = []  # (id, raw, queued at)
        self._busy = self._closed = False
        self._thread = threading.Thread(target=self._run, name="inbound-route", daemon=True)
        self._thread.start()

    def add(self, inbound_id: int, raw: bytes) -> None:
        with self._cond:
            self._waiting.append((inbound_id, raw, time.monotonic()))
            self._cond.notify_all()

    def drain(self) -> None:
        """Wait until every mail added has been processed."""
        with self._cond:
            while self._waiting or self._busy:
                self._cond.wait()

    def close(self) -> None:
        """Process what is waiting, then end the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._closed:
                    self._cond.wait()
                if not self._waiting:
                    return
                oldest = self._waiting[0][2]
            while (not self._closed and time.monotonic() - oldest < MAX_DEFER_SECONDS
                   and (self.in_flight or time.monotonic() - self.last_data < QUIET_SECONDS)):
                time.sleep(QUIET_SECONDS)
            with self._cond:
                batch: list[tuple[int, bytes]] = []
                size = 0
                while self._waiting and len(batch) < BATCH_MAILS and (not batch or size < BATCH_BYTES):
                    inbound_id, raw, _ = self._waiting.pop(0)
                    batch.append((inbound_id, raw))
                    size += len(raw)
                self._busy = True
            try:
                route.process_batch(self.ctx, batch)
            except Exception:  # it should not raise; were it to, the mails stay stored for process_pending
                log.exception("inbound SMTP: processing a batch failed")
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()


class InboundHandler:
    """aiosmtpd handler: RCPT checks the domain, DATA stores and then hands the mail to route."""

    def __init__(self, ctx: AppContext, store: GroupStore, routes: RouteQueue) -> None:
        self.ctx = ctx
        self.domains = accepted_domains(ctx.settings)
        self.store, self.routes = store, routes

    async def handle_RCPT(self, server: SMTP, session: SmtpSession, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        domain = address.rsplit("@", 1)[1].strip().lower() if "@" in address else ""
        if domain not in self.domains:
            return "550 5.7.1 Relay denied"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:
        self.routes.last_data = time.monotonic()
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer or "")
        mail = Incoming(raw, "smtp", f"smtp:{peer}", envelope.mail_from or "", ",".join(envelope.rcpt_tos))
        self.routes.in_flight += 1  # only the event loop's thread changes it
        try:
            stored = await asyncio.wrap_future(self.store.submit(mail))
        except Exception:
            log.exception("inbound SMTP: could not store a mail from %s; answered 451", peer)
            return "451 4.3.0 Mail not stored, try again later"
        finally:
            self.routes.in_flight -= 1
            self.routes.last_data = time.monotonic()
        if stored.status == InboundStatus.STORED:  # new, or sent again before it was processed
            self.routes.add(stored.id, raw)
        return f"250 2.0.0 OK stored as {stored.id}"


class InboundServer:
    """The running server: ``.port`` is where it listens, ``.stop()`` ends it after pending work."""

    def __init__(self, ctx: AppContext) -> None:
        self.store = GroupStore(ctx.db)
        self.routes = RouteQueue(ctx)
        self.handler = InboundHandler(ctx, self.store, self.routes)
        self.controller = _Controller(self.handler, hostname=ctx.settings.inbound.smtp_host,
                                      port=ctx.settings.inbound.smtp_port,
                                      data_size_limit=ctx.settings.inbound.max_message_bytes,
                                      server_hostname=ctx.settings.mail.bounce_domain)
        self.controller.start()
        self.host = ctx.settings.inbound.smtp_host
        self.port = self.controller.port
        log.info("inbound SMTP listening on %s:%s", self.host, self.port)

    def drain(self) -> None:
        """Wait until every received mail has been processed."""
        self.routes.drain()

    def stop(self) -> None:
        self.controller.stop()
        self.store.close()
        self.routes.close()


class _Controller(Controller):
    """A Controller that may bind port 0 and learns the port the system chose."""

    def _trigger_server(self) -> None:
        server: Any = self.server
        if server is not None and server.sockets:
            self.port = server.sockets[0].getsockname()[1]
        super()._trigger_server()


def start_inbound_server(ctx: AppContext) -> InboundServer:
    """Start listening on inbound.smtp_host:inbound.smtp_port (0 picks a free port); mails left stored
    but unprocessed by an earlier run are processed first."""
    route.process_pending(ctx)
    return InboundServer(ctx)
