"""Two hosts for tests/deploy/test_two_hosts.py: mailflow processes that share nothing but PostgreSQL (each
its own working folder with an empty var/, its own ports), Debian's HAProxy in front of the web ones
(round-robin, health checks on /healthz, connection failures retried on the other host), and a relay
sink that keeps every mail it accepts."""

from __future__ import annotations

import email
import email.policy
import re
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.peers import free_port, require_program
from tests.scale.sink import MESSAGE_ID, CountingHandler, CountingSink
from tests.scale.workers import Worker, worker_env

HAPROXY = "/usr/sbin/haproxy"
HOST_HEADER = "X-Mailflow-Host"

SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "haproxy" / "mailflow.cfg"
GLOBAL = """\
global
    maxconn 500
defaults
    mode http
"""


def haproxy_config(port: int, pem: Path, web_ports: list[int]) -> str:
    """The shipped deploy/haproxy/mailflow.cfg with this test's listening port, certificate and hosts."""
    lines = []
    for line in SHIPPED.read_text().splitlines():
        if line.strip().startswith("bind "):
            line = f"    bind 127.0.0.1:{port} ssl crt {pem}"
        elif line.strip().startswith("server "):
            continue
        lines.append(line)
    lines += [f"    server web{i + 1} 127.0.0.1:{p}" for i, p in enumerate(web_ports)]
    return GLOBAL + "\n".join(lines) + "\n"


class RecordingHandler(CountingHandler):
    """The counting sink, also keeping each accepted mail's bytes by Message-ID."""

    def __init__(self) -> None:
        super().__init__()
        self.raw: dict[str, bytes] = {}

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        answer = await super().handle_DATA(server, session, envelope)
        found = MESSAGE_ID.search(envelope.original_content or b"")
        if answer.startswith("250") and found:
            with self.lock:
                self.raw[found.group(1).decode()] = envelope.original_content or b""
        return answer


class RecordingSink(CountingSink):
    def __init__(self) -> None:
        super().__init__()
        self.recorder = RecordingHandler()
        self.handler = self.recorder

    def start(self) -> RecordingSink:
        super().start()
        return self

    def text_of(self, message_id: str) -> str:
        raw = self.recorder.raw[message_id]
        message: Any = email.message_from_bytes(raw, policy=email.policy.default)
        return str(message.get_body(("plain",)).get_content())


class HAProxy:
    def __init__(self, workdir: Path, web_ports: list[int]) -> None:
        require_program(HAPROXY, "haproxy")
        self.port = free_port()
        # TLS ends here, as in production: the cookies are Secure (http.base_url is https://).
        pem = workdir / "haproxy.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                        "/CN=hep.twport.com.tw", "-keyout", str(pem.with_suffix(".key")), "-out",
                        str(pem.with_suffix(".crt"))], check=True, capture_output=True, timeout=60)
        pem.write_bytes(pem.with_suffix(".crt").read_bytes() + pem.with_suffix(".key").read_bytes())
        self.config = workdir / "haproxy.cfg"
        self.config.write_text(haproxy_config(self.port, pem, web_ports))
        self.log_path = workdir / "haproxy.log"
        self.log = self.log_path.open("wb")
        # -db: stay in the foreground, ours to stop.
        self.proc = subprocess.Popen([HAPROXY, "-db", "-f", str(self.config)], stdout=self.log,
                                     stderr=subprocess.STDOUT)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.log.close()


@dataclass
class Host:
    """One machine's mailflow process: its own folder (cwd, var/), its own ports."""

    name: str
    role: str
    folder: Path
    env: dict[str, str]
    log_dir: Path
    http_port: int = 0
    smtp_port: int = 0
    process: Worker | None = None
    earlier: list[Worker] = field(default_factory=list)
    killed: bool = False  # on purpose: waits do not report it as died

    def start(self) -> Host:
        if self.process is not None:
            self.earlier.append(self.process)
        self.folder.mkdir(parents=True, exist_ok=True)
        assert not (self.folder / "var").exists() or not any((self.folder / "var").rglob("*.pdf"))
        self.process = Worker(self.env, self.log_dir, self.role, cwd=self.folder)
        self.killed = False
        return self

    def kill(self) -> None:
        assert self.process is not None
        self.killed = True
        self.process.kill()

    def terminate(self) -> int:
        assert self.process is not None
        return self.process.terminate()

    def output(self) -> str:
        return "\n".join(p.output() for p in [*self.earlier, *([self.process] if self.process else [])])

    def close(self) -> None:
        for process in [*self.earlier, *([self.process] if self.process else [])]:
            process.close()


def host_env(db_url: str, sink_port: int, folder: Path, **settings: object) -> dict[str, str]:
    """worker_env with this host's own relative folders: var/documents under its working folder."""
    env = worker_env(db_url, sink_port, folder, **settings)
    env["MAILFLOW_STORAGE__DOCUMENTS_DIR"] = "var/documents"
    return env


def wait_for(condition: Callable[[], Any], timeout: float, what: str, hosts: Sequence[Host] = (),
             every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        for host in hosts:
            if host.process is not None and not host.process.alive and not host.killed:
                raise AssertionError(f"{host.name} died while waiting for {what}:\n{host.output()[-3000:]}")
        time.sleep(every)
    logs = "\n".join(f"--- {h.name}\n{h.output()[-2000:]}" for h in hosts)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{logs}")


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


VERIFY_LINK = re.compile(r"https?://[^/\s]+(/verify/[A-Za-z0-9._~-]+)")


def verification_path(text: str) -> str:
    found = VERIFY_LINK.search(text)
    assert found, text
    return found.group(1)
