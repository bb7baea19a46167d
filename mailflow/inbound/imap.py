"""The IMAP poller (imapclient) on inbound.imap_*: bounces and replies read from a mailbox.

Each pass reads only the messages after the stored cursor (ImapCursor: UIDVALIDITY + last UID), so a
restart does not re-read; a new UIDVALIDITY resets the cursor and re-scans the folder, and the store's
(Message-ID, SHA-256) identity keeps the mails already recorded from being recorded or acted on twice.
Per batch of up to 100 messages: fetch → store the raw mails (one commit) → process them (one
transaction, route.process_batch) → move the batch to `mailflow/processed` or `mailflow/quarantine`
(MOVE, else COPY + \\Deleted + EXPUNGE) → advance the cursor. Nothing leaves the folder before its
bytes are committed, and one bad message is quarantined, never a reason to stop.

`poll(ctx)` is one pass; `run_idle_loop(ctx, stop)` is the long-running form for a thread: IMAP IDLE
(RFC 2177) where the server offers it — the server tells us of new mail at once, and the IDLE is ended
and re-issued every IDLE_RENEW_SECONDS, before the 29 minutes after which a server may log an idle
client off — polling every schedule.imap_poll_seconds where it does not, reconnecting with backoff
when the connection drops. `MailboxWatcher` runs that loop in `mailflow run` on the worker holding the
`job:imap` lease.
"""

from __future__ import annotations

import contextlib
import logging
import select as io_select
import ssl
import threading
import time
from dataclasses import dataclass, field

from imapclient import DELETED, IMAPClient
from sqlalchemy import select

from mailflow import leases
from mailflow.config import Settings
from mailflow.context import AppContext
from mailflow.db import Database
from mailflow.inbound import route
from mailflow.inbound.store import Incoming, store_mails
from mailflow.models import ImapCursor, InboundStatus
from mailflow.timeutil import now

log = logging.getLogger(__name__)

PROCESSED_FOLDER = "mailflow/processed"
QUARANTINE_FOLDER = "mailflow/quarantine"
TIMEOUT_SECONDS = 60.0
IDLE_RENEW_SECONDS = 25 * 60  # RFC 2177: re-issue IDLE before the server's 30-minute cut-off
MAX_BACKOFF_SECONDS = 300.0


@dataclass
class PollResult:
    seen: int = 0
    stored: int = 0
    statuses: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Folders:
    processed: str
    quarantine: str


# --- connection ----------------------------------------------------------------------------


def connect(settings: Settings) -> IMAPClient:
    cfg = settings.inbound
    client = IMAPClient(cfg.imap_host, port=cfg.imap_port, ssl=cfg.imap_ssl, timeout=TIMEOUT_SECONDS)
    try:
        client.login(cfg.imap_user, cfg.imap_password)
    except Exception:
        _logout(client)
        raise
    return client


def _logout(client: IMAPClient) -> None:
    try:
        client.logout()
    except Exception:  # the connection may already be gone; nothing to save there
        with contextlib.suppress(Exception):
            client.shutdown()


def mailbox_key(settings: Settings) -> str:
    cfg = settings.inbound
    return f"{cfg.imap_user}@{cfg.imap_host}:{cfg.imap_port}/{cfg.imap_folder}"[:400]


def ensure_folders(client: IMAPClient) -> Folders:
    """The processed/quarantine folders in the server's own hierarchy separator, created when missing."""
    prefix, separator = "", "/"
    try:
        personal = client.namespace().personal
        if personal:
            prefix, separator = personal[0][0] or "", personal[0][1] or "/"
    except Exception:
        pass  # no NAMESPACE extension: the usual "/" at the top level
    names = [prefix + name.replace("/", separator) for name in (PROCESSED_FOLDER, QUARANTINE_FOLDER)]
    for name in names:
        if not client.folder_exists(name):
            client.create_folder(name)
    return Folders(*names)


# --- the cursor ----------------------------------------------------------------------------


def load_cursor(db: Database, mailbox: str, uidvalidity: int) -> int:
    """The last UID already handled in ``mailbox``; 0 after a UIDVALIDITY change (the UIDs mean other
    messages now) or on the first pass."""
    with db.session() as session:
        cursor = session.execute(select(ImapCursor).where(ImapCursor.mailbox == mailbox)).scalar_one_or_none()
        if cursor is None:
            session.add(ImapCursor(mailbox=mailbox, uidvalidity=uidvalidity, last_uid=0))
            return 0
        if cursor.uidvalidity != uidvalidity:
            log.warning("IMAP %s: UIDVALIDITY changed %s -> %s; re-scanning the folder", mailbox,
                        cursor.uidvalidity, uidvalidity)
            cursor.uidvalidity, cursor.last_uid, cursor.updated_at = uidvalidity, 0, now()
            return 0
        return cursor.last_uid


def save_cursor(db: Database, mailbox: str, uidvalidity: int, uid: int) -> None:
    with db.session() as session:
        cursor = session.execute(select(ImapCursor).where(ImapCursor.mailbox == mailbox)).scalar_one()
        if cursor.uidvalidity == uidvalidity and uid > cursor.last_uid:
            cursor.last_uid, cursor.updated_at = uid, now()


# --- one pass ------------------------------------------------------------------------------


def poll(ctx: AppContext) -> PollResult | None:
    """One pass over inbound.imap_folder (the scheduler's job); None when IMAP is not configured."""
    if not ctx.settings.inbound.imap_host:
        return None
    route.process_pending(ctx)  # mails of any source left stored by a crash
    client = connect(ctx.settings)
    try:
        return poll_once(ctx, client)
    finally:
        _logout(client)


def poll_once(ctx: AppContext, client: IMAPClient, folders: Folders | None = None) -> PollResult:
    """One pass on an open connection; ``folders`` as ensure_folders found them on this connection (the
    IDLE reader looks once per connection, not three round trips per new mail)."""
    folders = folders or ensure_folders(client)
    info = client.select_folder(ctx.settings.inbound.imap_folder)
    uidvalidity = int(info[b"UIDVALIDITY"])
    mailbox = mailbox_key(ctx.settings)
    last_uid = load_cursor(ctx.db, mailbox, uidvalidity)
    # "n:*" always names the highest UID, even one below n: filter again.
    uids = sorted(uid for uid in client.search(["UID", f"{last_uid + 1}:*"]) if uid > last_uid)
    result = PollResult()
    for batch in batches(client, uids):
        handle_batch(ctx, client, batch, folders, f"{mailbox}#{uidvalidity}", result)
        save_cursor(ctx.db, mailbox, uidvalidity, batch[-1])
    if uids:
        log.info("IMAP %s: %d message(s) handled %s", mailbox, len(uids), result.statuses)
    return result


# One FETCH and one MOVE per batch instead of one round trip each per mail (bench/inbound.py: most of a
# pass was spent waiting for the server); the byte bound keeps a batch of large mails out of memory.
BATCH_MAILS = 100
BATCH_BYTES = 16 * 1024 * 1024


def batches(client: IMAPClient, uids: list[int]) -> list[list[int]]:
    """``uids`` in order, cut into batches of at most BATCH_MAILS mails and BATCH_BYTES bytes (a mail
    larger than that is a batch of its own)."""
    if not uids:
        return []
    sizes = client.fetch(uids, ["RFC822.SIZE"])
    found: list[list[int]] = []
    current: list[int] = []
    total = 0
    for uid in uids:
        size = int(sizes.get(uid, {}).get(b"RFC822.SIZE", 0))
        if current and (len(current) >= BATCH_MAILS or total + size > BATCH_BYTES):
            found.append(current)
            current, total = [], 0
        current.append(uid)
        total += size
    found.append(current)
    return found


def handle_batch(ctx: AppContext, client: IMAPClient, uids: list[int], folders: Folders, ref: str,
                 result: PollResult) -> None:
    """Fetch ``uids``, store them (one commit for the batch), process them (one transaction for the
    batch; route.process_batch), then move them where they belong. A mail is moved only after its row
    is committed; an exception leaves the batch's mails in the folder (read again, and recognised by the
    store, on the next pass; any left `stored` are finished by process_pending first)."""
    fetched = client.fetch(uids, ["BODY.PEEK[]"])
    present = [(uid, bytes(fetched[uid][b"BODY[]"])) for uid in uids
               if fetched.get(uid, {}).get(b"BODY[]") is not None]
    # Raises when the database is down: nothing is moved, the mails stay in the folder.
    stored = store_mails(ctx.db, [Incoming(raw, "imap", f"{ref}:{uid}") for uid, raw in present])
    todo = {mail.id: raw for mail, (_uid, raw) in zip(stored, present, strict=True)
            if mail.status == InboundStatus.STORED}
    done = route.process_batch(ctx, list(todo.items()))
    final = {uid: done.get(mail.id, mail.status) for mail, (uid, _raw) in zip(stored, present, strict=True)}
    result.stored += sum(mail.new for mail in stored)
    moves: dict[str, list[int]] = {folders.processed: [], folders.quarantine: []}
    for uid in uids:
        result.seen += 1
        status = final.get(uid, "gone")  # gone: expunged by someone else since the search
        result.statuses[status] = result.statuses.get(status, 0) + 1
        if status == InboundStatus.STORED:
            raise RuntimeError(f"IMAP {ref}:{uid}: stored but not processed; leaving the batch in the folder")
        if status != "gone":
            quarantined = status == InboundStatus.QUARANTINED
            moves[folders.quarantine if quarantined else folders.processed].append(uid)
    for folder, moved in moves.items():
        if moved:
            move_messages(client, moved, folder)


def move_messages(client: IMAPClient, uids: list[int], folder: str, *, use_move: bool | None = None) -> None:
    if use_move is None:
        use_move = client.has_capability("MOVE")
    if use_move:
        client.move(uids, folder)
        return
    client.copy(uids, folder)
    client.add_flags(uids, [DELETED], silent=True)
    if client.has_capability("UIDPLUS"):
        client.uid_expunge(uids)
    else:
        client.expunge()


# --- the long-running form -----------------------------------------------------------------


@dataclass
class LoopStatus:
    """What the long-running reader is doing, for logs and tests: ``mode`` is "idle" (the server pushes
    new mail), "poll" (no IDLE: a pass every schedule.imap_poll_seconds) or "" before the first
    connection; ``sessions`` counts the connections made (a reconnect adds one)."""

    mode: str = ""
    sessions: int = 0
    idles: int = 0  # IDLE commands issued (one per wait; re-issued after idle_seconds)


def run_idle_loop(ctx: AppContext, stop: threading.Event, *, idle_seconds: float = IDLE_RENEW_SECONDS,
                  status: LoopStatus | None = None) -> None:
    """Handle mail as it arrives until ``stop`` is set: a pass, then IDLE (or a poll interval) and again.
    Connection failures are retried with a doubling wait up to MAX_BACKOFF_SECONDS."""
    status = status if status is not None else LoopStatus()
    backoff = 1.0
    while not stop.is_set():
        try:
            client = connect(ctx.settings)
        except Exception as exc:
            log.warning("IMAP connect failed (%s); retrying in %.0fs", type(exc).__name__, backoff)
            stop.wait(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            continue
        backoff = 1.0
        status.sessions += 1
        try:
            _serve(ctx, client, stop, idle_seconds, status)
        except Exception as exc:
            log.warning("IMAP session ended (%s: %s); reconnecting", type(exc).__name__, exc)
            stop.wait(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
        finally:
            _logout(client)


def _serve(ctx: AppContext, client: IMAPClient, stop: threading.Event, idle_seconds: float,
           status: LoopStatus) -> None:
    status.mode = "idle" if client.has_capability("IDLE") else "poll"
    if status.sessions == 1 or status.mode == "poll":
        log.info("IMAP %s: %s", mailbox_key(ctx.settings),
                 "waiting with IDLE" if status.mode == "idle" else
                 f"the server offers no IDLE; polling every {ctx.settings.schedule.imap_poll_seconds:g} s")
    folders = ensure_folders(client)
    while not stop.is_set():
        poll_once(ctx, client, folders)
        if status.mode == "idle":
            status.idles += 1
            wait_for_mail(client, stop, idle_seconds)
        else:
            stop.wait(ctx.settings.schedule.imap_poll_seconds)


STOP_CHECK_SECONDS = 1.0


def wait_for_mail(client: IMAPClient, stop: threading.Event, seconds: float) -> bool:
    """IDLE until the server reports new mail, ``stop`` is set or ``seconds`` pass; True on new mail.
    Raises ConnectionError when the server closes the connection meanwhile (a restart, a kick): the
    socket then reads as ready with nothing in it, which idle_check alone reports as "no news"."""
    _forget_mailbox_news(client)
    client.idle()
    deadline = time.monotonic() + seconds
    changed = _news_already_read(client)
    while not stop.is_set() and not changed:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        # Short waits so a stop request is noticed quickly.
        ready, _, _ = io_select.select([client.socket()], [], [], min(STOP_CHECK_SECONDS, left))
        if not ready:
            continue
        responses = client.idle_check(timeout=0)
        if not responses:
            # No DONE on a dead connection: the caller logs out and reconnects.
            raise ConnectionError("the IMAP server closed the connection during IDLE")
        changed = any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses)
    client.idle_done()
    return changed


MAILBOX_NEWS = ("EXISTS", "RECENT")


def _forget_mailbox_news(client: IMAPClient) -> None:
    """Drop the counts earlier commands (SELECT, NOOP) left with the IMAP library: the pass that just ran
    has read the mailbox since, so only what the server says from IDLE on is news."""
    for key in MAILBOX_NEWS:
        client._imap.untagged_responses.pop(key, None)


def _news_already_read(client: IMAPClient) -> bool:
    """Whether the server spoke as IDLE began, in bytes the IMAP library has already taken off the socket.
    A mail that arrived between the last pass and IDLE is announced at once, often in the same packet as
    the '+ idling' continuation: imaplib then files the EXISTS away while reading that line, or keeps it in
    its read buffer, and a select() on the socket never wakes for it — the reader would sleep until the
    next IDLE renewal (29 minutes). Either way there is something to read: treat it as news (a spurious
    pass costs one SEARCH)."""
    imap_conn = client._imap
    if any(imap_conn.untagged_responses.get(key) for key in MAILBOX_NEWS):
        return True
    sock = client.socket()
    sock.setblocking(False)  # peek must not wait: it reads the socket only when the buffer is empty
    try:
        return bool(imap_conn.file.peek(1))
    except (BlockingIOError, ssl.SSLWantReadError):
        return False
    finally:
        sock.setblocking(True)
        client._set_read_timeout()


class MailboxWatcher:
    """The IMAP reader of `mailflow run` (a worker that reads mail): a thread that takes the `job:imap`
    lease — so of many workers exactly one reads the mailbox, and another takes over when it dies — and
    runs run_idle_loop while it holds it. start()/stop() like the daemon's mail servers."""

    LEASE = "job:imap"

    def __init__(self, ctx: AppContext, *, idle_seconds: float = IDLE_RENEW_SECONDS) -> None:
        self.ctx, self.idle_seconds = ctx, idle_seconds
        self.status = LoopStatus()
        self._stop = threading.Event()
        self._session_stop = threading.Event()  # set by stop() and when the lease is lost
        self._thread = threading.Thread(target=self._run, name="imap-watcher", daemon=True)

    def start(self) -> MailboxWatcher:
        self._thread.start()
        return self

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        self._session_stop.set()
        self._thread.join(timeout)
        with contextlib.suppress(Exception):  # the database may be away; the lease then expires
            leases.release(self.ctx.db, self.LEASE, self.ctx.worker_id)

    def _run(self) -> None:
        ttl = self.ctx.settings.schedule.lease_seconds
        while not self._stop.is_set():
            self._session_stop.clear()
            if self._stop.is_set():
                break
            try:
                with leases.hold(self.ctx.db, self.LEASE, self.ctx.worker_id, ttl,
                                 on_lost=self._session_stop.set) as held:
                    if held is not None:
                        run_idle_loop(self.ctx, self._session_stop, idle_seconds=self.idle_seconds,
                                      status=self.status)
                        continue
            except Exception as exc:  # the database is away while taking the lease
                log.warning("IMAP reader: could not take its lease (%s); retrying", type(exc).__name__)
            # Another worker reads the mailbox (or the database is away): look again later.
            self._stop.wait(min(ttl / 3, 30.0))
