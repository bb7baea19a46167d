"""Beyond one machine (docs/DEPLOY.md §10): two `mailflow run --role web` hosts and two `--role worker`
hosts, each with its own empty var/ folder and ports, sharing one PostgreSQL, behind Debian's HAProxy
(round-robin). The seed story runs through HAProxy with registration, the reviewer's document viewer,
verification and login on alternating hosts; killing a web host mid-run loses no request HAProxy could
retry and no mail; documents survive a restart of both web hosts; a bounce delivered to both inbound
SMTP servers is processed once, and one worker of two reads the IMAP mailbox.

PostgreSQL pass only (the hosts share a database server). The processes start in parallel and every
wait is on an event, not a fixed sleep, to keep the run short."""

from __future__ import annotations

import hashlib
import re
import smtplib
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, closing
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from imapclient import IMAPClient
from sqlalchemy import func, select, text

from mailflow import leases
from mailflow.accounts.rules import is_valid_ubn
from mailflow.config import Settings, load_settings
from mailflow.db import Database
from mailflow.mail.returnpath import make_return_path
from mailflow.models import (
    Account,
    Application,
    BounceRecipient,
    Document,
    DocumentChunk,
    InboundMessage,
    OutboxMessage,
    StaffUser,
    Suppression,
)
from mailflow.passwords import hash_password
from tests.conftest import PG_ADMIN_URL, _pg_admin_engine
from tests.deploy.twohosts import (
    HAPROXY,
    HOST_HEADER,
    HAProxy,
    Host,
    RecordingSink,
    answers,
    host_env,
    verification_path,
    wait_for,
)
from tests.inbound.dovecot import DovecotServer, dovecot_or_skip, start_dovecot
from tests.inbound.test_intake_helpers import dsn
from tests.peers import free_port, greets, require_program
from tests.web.test_register_api import FIELDS

pytestmark = pytest.mark.postgres_only

STAFF = ("lin", "Reviewer-Secret-2024")
PASSWORD = FIELDS["password"]
START_TIMEOUT = 60


def pdf_of(size: int, seed: str) -> bytes:
    body = hashlib.sha256(seed.encode()).digest() * (size // 32 + 1)
    return (b"%PDF-1.7\n" + body)[:size]


def ubns() -> Iterator[str]:
    number = 20000000
    while True:
        number += 1
        if is_valid_ubn(str(number)):
            yield str(number)


@dataclass
class Site:
    db: Database
    settings: Settings  # as the hosts read theirs, for building bounces
    sink: RecordingSink
    dovecot: DovecotServer
    web: list[Host]
    workers: list[Host]
    proxy: HAProxy
    ubn: Iterator[str]

    @property
    def hosts(self) -> list[Host]:
        return [*self.web, *self.workers]

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.proxy.url, timeout=30, follow_redirects=False, verify=False)

    def wait_web_up(self) -> None:
        for host in self.web:
            url = f"http://127.0.0.1:{host.http_port}/healthz"
            wait_for(partial(answers, url), START_TIMEOUT, f"{host.name} to answer", self.hosts)
        # HAProxy checks every 250 ms: both back ends are in once answers come from both.
        with self.client() as client:
            seen: set[str] = set()

            def both() -> bool:
                seen.add(client.get("/healthz").headers.get(HOST_HEADER, ""))
                return seen >= {"web1", "web2"}
            wait_for(both, 10, "HAProxy to route to both hosts", self.hosts)

    def mail_to(self, account: str, template: str) -> OutboxMessage:
        def sent() -> OutboxMessage | None:
            with self.db.session() as session:
                row = session.scalars(
                    select(OutboxMessage).join(Account, Account.id == OutboxMessage.account_id)
                    .where(Account.account == account, OutboxMessage.template == template)).first()
            return row if row is not None and self.sink.received[row.message_id] else None
        found: OutboxMessage = wait_for(sent, 30, f"{template} to {account} at the relay", self.hosts)
        return found


@pytest.fixture(scope="module")
def site(pg_template: str | None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    assert pg_template is not None
    dovecot_or_skip()
    require_program(HAPROXY, "haproxy")
    name = f"mf_hosts_{uuid.uuid4().hex[:10]}"
    admin = _pg_admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    root = tmp_path_factory.mktemp("hosts")
    db = Database(url)
    with ExitStack() as cleanup:
        cleanup.callback(_drop, admin, name)
        cleanup.callback(db.dispose)
        sink = RecordingSink().start()
        cleanup.callback(sink.stop)
        dovecot = start_dovecot()
        cleanup.callback(dovecot.stop)
        with db.session() as session:
            session.add(StaffUser(name=STAFF[0], role="reviewer", password_hash=hash_password(STAFF[1])))
        imap = {"inbound__imap_host": dovecot.host, "inbound__imap_port": dovecot.port,
                "inbound__imap_user": dovecot.user, "inbound__imap_password": dovecot.password,
                "inbound__imap_ssl": "false", "schedule__imap_poll_seconds": 1}
        web: list[Host] = []
        workers: list[Host] = []
        for index in (1, 2):
            port = free_port()
            folder = root / f"web{index}"
            web.append(Host(f"web{index}", "web", folder, host_env(url, sink.port, folder, http__port=port,
                                                     http__forwarded_allow_ips="127.0.0.1"),
                            root, http_port=port))
            smtp_port = free_port()
            folder = root / f"worker{index}"
            workers.append(Host(f"worker{index}", "worker", folder,
                                host_env(url, sink.port, folder, inbound__smtp_port=smtp_port,
                                         schedule__lease_seconds=5, **imap), root, smtp_port=smtp_port))
        proxy = HAProxy(root, [h.http_port for h in web])
        cleanup.callback(proxy.close)
        built = Site(db, load_settings(None, workers[0].env), sink, dovecot, web, workers, proxy, ubns())
        for host in built.hosts:
            cleanup.callback(host.close)
            host.start()
        built.wait_web_up()
        for host in workers:
            wait_for(partial(greets, host.smtp_port, b"220"), START_TIMEOUT, f"{host.name}'s SMTP",
                     built.hosts)
        yield built


def _drop(admin: Any, name: str) -> None:
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def register(client: httpx.Client, site: Site, account: str, document: bytes) -> httpx.Response:
    fields = {**FIELDS, "account": account, "ubn": next(site.ubn), "email": f"{account}@example.com"}
    return client.post("/api/applications", data=fields,
                       files={"document": ("公司登記表.pdf", document, "application/pdf")})


def host_of(answer: httpx.Response) -> str:
    return answer.headers[HOST_HEADER]


def next_on(client: httpx.Client, host: str) -> None:
    """Steer round-robin: probe until a probe lands on the other host, so the next request lands on
    ``host`` (only this client talks to HAProxy during the story)."""
    wait_for(lambda: host_of(client.get("/healthz")) != host, 5, f"round-robin to point at {host}")


def csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


def staff_client(site: Site) -> httpx.Client:
    client = site.client()
    token = csrf(client.get("/staff/login"))
    answer = client.post("/staff/login", data={"name": STAFF[0], "password": STAFF[1], "next": "",
                                               "csrf_token": token})
    assert answer.status_code == 303, answer.text[:500]
    return client


def test_the_seed_story_runs_across_both_hosts(site: Site) -> None:
    document = pdf_of(3 * 256 * 1024 + 99, "story")
    steps: dict[str, str] = {}
    with site.client() as applicant, closing(staff_client(site)) as staff:
        next_on(applicant, "web1")
        created = register(applicant, site, "story0001", document)
        assert created.status_code == 201, created.text
        steps["registration"] = host_of(created)
        application_id = created.json()["id"]
        site.mail_to("story0001", "registration-received")

        next_on(staff, "web2")
        page = staff.get(f"/review/applications/{application_id}")
        assert page.status_code == 200 and "公司登記表.pdf" in page.text
        next_on(staff, "web2")
        viewed = staff.get(f"/review/applications/{application_id}/document")
        assert viewed.status_code == 200 and viewed.content == document
        assert viewed.headers["content-security-policy"].startswith("default-src 'none'")
        steps["document viewer"] = host_of(viewed)
        next_on(staff, "web1")
        approved = staff.post(f"/review/applications/{application_id}/approve",
                              data={"note": "文件清楚", "csrf_token": csrf(page)})
        assert approved.status_code == 303, approved.text[:500]
        steps["approval"] = host_of(approved)

        link = verification_path(site.sink.text_of(site.mail_to("story0001", "account-approved").message_id))
        next_on(applicant, "web2")
        assert applicant.get(link).status_code == 200
        next_on(applicant, "web1")
        verified = applicant.post(link, data={"password": PASSWORD})
        assert verified.status_code == 200 and "驗證完成" in verified.text
        steps["verification"] = host_of(verified)
        next_on(applicant, "web2")
        login = applicant.post("/api/session", json={"account": "story0001", "password": PASSWORD})
        assert login.status_code == 200 and login.json()["account"] == "story0001"
        steps["login"] = host_of(login)
    assert steps == {"registration": "web1", "document viewer": "web2", "approval": "web1",
                     "verification": "web1", "login": "web2"}
    # Neither web host keeps a document on its disk: the one that received it has an empty folder too.
    assert [p for host in site.web for p in host.folder.rglob("*") if p.is_file() and
            "documents" in p.parts] == []
    site.mail_to("story0001", "document-approved")


@dataclass
class Call:
    kind: str
    start: float
    end: float
    status: int  # 0: no HTTP answer at all
    body: Any = None  # a registration's 201 JSON
    error: str = ""


def _load(site: Site, kind: str, stop: threading.Event, calls: list[Call], work: Any) -> None:
    with closing(staff_client(site) if kind == "view" else site.client()) as client:
        index = 0
        while not stop.is_set():
            start = time.monotonic()
            try:
                answer = work(client, index)
                if answer is None:
                    return
                created = kind == "register" and answer.status_code == 201
                calls.append(Call(kind, start, time.monotonic(), answer.status_code,
                                  answer.json() if created else None))
            except httpx.HTTPError as exc:
                calls.append(Call(kind, start, time.monotonic(), 0, error=repr(exc)))
            index += 1


def test_killing_a_web_host_mid_run_loses_no_retryable_request_and_no_mail(site: Site) -> None:
    document = pdf_of(600 * 1024, "kill")
    with site.client() as client:
        kept = register(client, site, "keep0001", document)
    assert kept.status_code == 201
    kept_id = kept.json()["id"]
    calls: list[Call] = []
    stop = threading.Event()
    run = f"k{uuid.uuid4().hex[:4]}"
    work = {
        # 10 registrations at most: the sign-up limit per client address (20 an hour) covers the whole module.
        "register": lambda c, i: register(c, site, f"{run}{i:04d}", pdf_of(300 * 1024, f"{run}{i}"))
        if i < 10 else None,
        "view": lambda c, i: c.get(f"/review/applications/{kept_id}/document"),
        "page": lambda c, i: c.get("/register"),
    }
    threads = [threading.Thread(target=_load, args=(site, kind, stop, calls, job), daemon=True)
               for kind, job in work.items()]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: sum(c.kind == "register" for c in calls) >= 3, 30, "the first registrations",
                 site.hosts)
        killed_at = time.monotonic()
        site.web[0].kill()  # SIGKILL, then until the process is reaped: its sockets are open till then
        dead_at = time.monotonic()
        def after(kind: str) -> int:
            return sum(c.kind == kind and c.start > killed_at for c in calls)
        wait_for(lambda: after("register") >= 3 and after("view") >= 5 and after("page") >= 5, 60,
                 "requests of each kind after the kill", site.hosts)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    # In flight: a request that overlapped the dying (a POST the kernel still queued for the process
    # between the signal and the reaping reached the host, and may not be sent again: it may have committed).
    in_flight = [c for c in calls if c.start <= dead_at and c.end >= killed_at]
    others = [c for c in calls if c not in in_flight]
    failed = [c for c in others if c.status not in (200, 201)]
    assert failed == [], (killed_at, failed)
    assert dead_at - killed_at < 5
    lost = [c.kind for c in in_flight if c.status not in (200, 201)]
    assert len(lost) == len(set(lost)) <= len(threads)  # at most the one request each client had there
    assert any(c.kind == "register" and c.start > killed_at for c in others)
    # No mail lost: every registration that committed, answered or not, has its mail at the relay once.
    with site.db.session() as session:
        accounts = list(session.scalars(select(Account.account).where(Account.account.like(f"{run}%"))))
    answered = {c.body["account"] for c in calls if c.body}
    assert answered <= set(accounts) and answered
    for account in accounts:
        mail = site.mail_to(account, "registration-received")
        assert site.sink.received[mail.message_id] == 1

    # Both web hosts restart (one was killed, the other stops cleanly), on new empty folders: the
    # documents are where they were, in PostgreSQL.
    assert site.web[1].terminate() == 0
    for host in site.web:
        host.folder = host.folder.with_name(host.folder.name + "-new")
        host.start()
    site.wait_web_up()
    with closing(staff_client(site)) as staff:
        served = {host_of(a): a.content for a in (staff.get(f"/review/applications/{kept_id}/document")
                                                  for _ in range(4)) if a.status_code == 200}
    assert set(served) == {"web1", "web2"} and set(served.values()) == {document}


def deliver(port: int, return_path: str, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.sendmail("", [return_path], raw)


def test_a_bounce_delivered_to_both_inbound_servers_is_processed_once(site: Site) -> None:
    with site.client() as client:
        for account in ("bounce001", "bounce002"):
            assert register(client, site, account, pdf_of(1000, account)).status_code == 201
    first = site.mail_to("bounce001", "registration-received")
    second = site.mail_to("bounce002", "registration-received")
    bounce = dsn(site.settings, first)
    # The MX names both workers; the sending server delivered it to one, got no answer, tried the other.
    threads = [threading.Thread(target=deliver, args=(w.smtp_port, make_return_path(site.settings, first.id),
                                                      bounce)) for w in site.workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # Another bounce arrives in the IMAP mailbox that both workers are configured to read.
    with IMAPClient(site.dovecot.host, site.dovecot.port, ssl=False, timeout=30) as imap:
        imap.login(site.dovecot.user, site.dovecot.password)
        imap.append("INBOX", dsn(site.settings, second))

    def processed() -> bool:
        with site.db.session() as session:
            rows = session.scalars(select(InboundMessage.status)).all()
        return len(rows) == 2 and all(status == "processed" for status in rows)
    wait_for(processed, 30, "both bounces processed", site.hosts)
    with site.db.session() as session:
        sources = sorted(session.scalars(select(InboundMessage.source)))
        recipients = session.scalars(select(BounceRecipient.address)).all()
        suppressed = sorted(session.scalars(select(Suppression.address_key)))
    assert sources == ["imap", "smtp"]
    assert sorted(recipients) == ["bounce001@example.com", "bounce002@example.com"]
    assert suppressed == ["bounce001@example.com", "bounce002@example.com"]
    # One reader of the mailbox: the holder of the job:imap lease; the other worker waits for it.
    assert leases.holder_of(site.db, "job:imap") is not None
    readers = [w.name for w in site.workers if "waiting with IDLE" in w.output()]
    assert len(readers) == 1, readers


def test_the_database_holds_every_document_and_no_host_folder_does(site: Site) -> None:
    with site.db.session() as session:
        documents = session.scalars(select(Document)).all()
        sizes = select(DocumentChunk.document_id, func.sum(func.length(DocumentChunk.data)))
        stored: dict[int, int] = dict(session.execute(sizes.group_by(DocumentChunk.document_id)).all())
        applications = session.scalar(select(func.count()).select_from(Application))
    assert documents and len(documents) == applications
    assert all(d.stored_in == "database" and stored[d.id] == d.size for d in documents)
    assert [p for host in site.hosts for p in Path(host.folder).rglob("*.pdf")] == []
