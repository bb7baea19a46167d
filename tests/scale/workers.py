"""Worker processes for the scale tests and bench/scale.py: `python -m mailflow run --role worker` (or
`--role web`) with MAILFLOW_* settings, a fast bulk insert of queued outbox rows, and waiting on the
outbox instead of sleeping for a fixed time."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from sqlalchemy import func, insert, select

from mailflow.db import Database
from mailflow.models import OutboxMessage, OutboxStatus
from mailflow.timeutil import now

REPO = Path(__file__).resolve().parents[2]
SECRET_KEY = "scale-test-secret-key-not-for-production"


def worker_env(db_url: str, smtp_port: int, workdir: Path, **settings: object) -> dict[str, str]:
    """The environment of one mailflow process: relay to the sink, short ticks, nothing else listening."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILFLOW_")}
    values: dict[str, object] = {
        "database.url": db_url,
        "smtp.mode": "relay",
        "http.base_url": "https://hep.twport.com.tw",  # relay mode refuses a local one
        "smtp.host": "127.0.0.1",
        "smtp.port": smtp_port,
        "smtp.timeout_seconds": 10,
        "security.secret_key": SECRET_KEY,
        "storage.documents_dir": workdir / "documents",
        "inbound.smtp_port": 0,
        "http.port": 0,
        "schedule.dispatch_seconds": 0.2,
        "schedule.dispatch_batch": 200,
        "schedule.lease_seconds": 30,
    }
    values.update({k.replace("__", "."): v for k, v in settings.items()})
    for key, value in values.items():
        section, name = key.split(".")
        env[f"MAILFLOW_{section.upper()}__{name.upper()}"] = str(value)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Worker:
    """One `mailflow run` subprocess, its output kept in a log file for when a test fails."""

    def __init__(self, env: dict[str, str], log_dir: Path, role: str = "worker", cwd: Path = REPO) -> None:
        """``cwd``: the process's working folder, where its relative paths (var/…) land; a folder of
        its own makes it a host of its own (tests/deploy/test_two_hosts.py)."""
        self.log_path = log_dir / f"{role}-{uuid.uuid4().hex[:6]}.log"
        self.log: IO[bytes] = self.log_path.open("wb")
        env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))}
        self.proc = subprocess.Popen([sys.executable, "-m", "mailflow", "run", "--role", role], cwd=cwd,
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def terminate(self, timeout: float = 60) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        if self.alive:
            self.kill()
        self.log.close()


@contextmanager
def workers(env: dict[str, str], log_dir: Path, n: int) -> Iterator[list[Worker]]:
    started = [Worker(env, log_dir) for _ in range(n)]
    try:
        yield started
    finally:
        for worker in started:
            worker.close()


def queue_mails(db: Database, n: int, chunk: int = 5000, tag: str = "") -> None:
    """Insert ``n`` queued registration-received mails straight into the outbox (no events: fast)."""
    tag = tag or uuid.uuid4().hex[:8]
    moment = now()
    for start in range(0, n, chunk):
        rows = [{
            "template": "registration-received",
            "to_address": f"applicant{i}@example.com",
            "to_key": f"applicant{i}@example.com",
            "to_name": "王小明",
            "context": {"name": "王小明", "account": f"example{i}", "ubn": "12345678",
                        "company_name": "臺灣港務股份有限公司基隆分公司", "submitted_at": moment.isoformat()},
            "message_id": f"<scale-{tag}-{i}@twport.com.tw>",
            "status": OutboxStatus.QUEUED,
            "attempts": 0,
            "next_attempt_at": moment,
            "created_at": moment,
            "autoreply_seen": False,
        } for i in range(start, min(start + chunk, n))]
        with db.session() as session:
            session.execute(insert(OutboxMessage), rows)


TICK_LINE = re.compile(r"dispatch tick: claimed (\d+)")


def claimed_by_log(output: str) -> int:
    """How many mails a worker claimed, from its dispatch tick log lines."""
    return sum(int(n) for n in TICK_LINE.findall(output))


def status_counts(db: Database) -> dict[str, int]:
    with db.session() as session:
        rows = session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status))
        return {status: int(count) for status, count in rows}


def message_ids(db: Database) -> set[str]:
    with db.session() as session:
        return set(session.scalars(select(OutboxMessage.message_id)))


