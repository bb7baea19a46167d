"""Company documents at their size limit: 20 parallel uploads (POST /api/applications with a 10 MB
document) and then 20 parallel reviewer views of those documents (GET /review/applications/{id}/document),
against one `mailflow run --role web` process, for each storage backend (filesystem, database). Prints
throughput (requests/s and MB/s) and the web process's peak RSS above its resting RSS in each phase.

    python bench/documents.py [--database-url URL] [--parallel 20] [--mb 10] [--rounds 2]

Limit: the documents' share of a phase's peak RSS growth is at most LIMIT_MB (64 MB) — a process that
held each 10 MB file in memory would grow by 200 MB or more (20 x 10 MB). The share is the growth with
10 MB documents minus the growth of the same 20 registrations with 50 KB documents (the registrations
themselves: threads, argon2, sessions), measured first; views need no baseline. Ratio = share / limit
(<= 1: met). Peak RSS is the kernel's high-water mark (VmHWM), reset before each phase
(/proc/PID/clear_refs). The web process inherits this environment: run it once more with
MALLOC_ARENA_MAX=2 (as deploy/mailflow-web.service sets it) to see glibc's per-thread arenas' part.
Default database: a fresh database on the local PostgreSQL (postgresql+psycopg://postgres@127.0.0.1/...),
made and dropped by the script; with --database-url, an empty database you made (SQLite works too).
Uploads come from distinct X-Forwarded-For addresses (the web process believes them from 127.0.0.1:
http.forwarded_allow_ips), so the per-address sign-up limit (20 an hour) refuses none of the rounds.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mailflow.accounts.rules import is_valid_ubn  # noqa: E402
from mailflow.db import Database, init_schema  # noqa: E402
from mailflow.models import StaffUser  # noqa: E402
from mailflow.passwords import hash_password  # noqa: E402

LIMIT_MB = 64
SMALL = 50 * 1024
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
STAFF = ("bench", "Bench-Reviewer-2024")
FIELDS = {
    "name": "王小明", "mobile": "0912-345-678", "password": "Harbour2024", "password_confirm": "Harbour2024",
    "company_phone": "02-12345678", "company_name": "臺灣港務股份有限公司基隆分公司",
    "company_address": "804004高雄市鼓山區蓬萊路10號", "company_owner": "陳大文",
}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS


def document(size: int, seed: str) -> bytes:
    block = hashlib.sha256(seed.encode()).digest() * 2048  # 64 KiB, different per document
    body = block * (size // len(block) + 1)
    return (b"%PDF-1.7\n" + body)[:size]


class Ubns:
    def __init__(self) -> None:
        self.number = 30000000

    def next(self) -> str:
        while True:
            self.number += 1
            if is_valid_ubn(str(self.number)):
                return str(self.number)


def start_web(url: str, backend: str, folder: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILFLOW_")}
    env.update({"MAILFLOW_DATABASE__URL": url, "MAILFLOW_STORAGE__BACKEND": backend,
                "MAILFLOW_STORAGE__DOCUMENTS_DIR": str(folder / "documents"),
                "MAILFLOW_HTTP__PORT": str(port), "MAILFLOW_HTTP__FORWARDED_ALLOW_IPS": "127.0.0.1",
                "MAILFLOW_HTTP__BASE_URL": "http://127.0.0.1", "TMPDIR": str(folder),
                "PYTHONPATH": str(ROOT)})
    proc = subprocess.Popen([sys.executable, "-m", "mailflow", "run", "--role", "web"], cwd=folder, env=env,
                            stdout=subprocess.DEVNULL, stderr=(folder / "web.log").open("wb"))
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"web process did not start: {(folder / 'web.log').read_text()[-2000:]}")


def upload(base: str, index: int, tag: str, ubn: str, content: bytes) -> tuple[int, int | None]:
    account = f"b{tag}{index:03d}"
    fields = {**FIELDS, "account": account, "ubn": ubn, "email": f"{account}@example.com"}
    headers = {"X-Forwarded-For": f"10.{index // 250}.{index % 250}.{int(tag[:2], 16)}"}
    with httpx.Client(base_url=base, timeout=300) as client:
        answer = client.post("/api/applications", data=fields, headers=headers,
                             files={"document": ("scan.pdf", content, "application/pdf")})
    return answer.status_code, answer.json().get("id") if answer.status_code == 201 else None


def view(base: str, cookies: httpx.Cookies, application_id: int) -> tuple[int, int]:
    size = 0
    with httpx.Client(base_url=base, timeout=300, cookies=cookies) as client, \
            client.stream("GET", f"/review/applications/{application_id}/document") as answer:
        for chunk in answer.iter_bytes():
            size += len(chunk)
    return answer.status_code, size


def staff_cookies(base: str) -> httpx.Cookies:
    import re

    with httpx.Client(base_url=base, timeout=30) as client:
        page = client.get("/staff/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token, page.text[:300]
        answer = client.post("/staff/login", data={"name": STAFF[0], "password": STAFF[1], "next": "",
                                                   "csrf_token": token.group(1)})
        assert answer.status_code == 303, answer.status_code
        return client.cookies


def phase(pid: int, parallel: int, work: Any) -> tuple[float, float, float, list[Any]]:
    """(seconds, peak RSS in MB, its growth over the RSS before, results) of ``parallel`` calls of
    work(i) at once."""
    rest = kib(pid, "VmRSS")
    reset_peak(pid)
    started = time.monotonic()
    with ThreadPoolExecutor(parallel) as pool:
        results = list(pool.map(work, range(parallel)))
    seconds = time.monotonic() - started
    peak = kib(pid, "VmHWM")
    return seconds, peak / 1024, (peak - rest) / 1024, results


def run_backend(url: str, backend: str, parallel: int, size: int, rounds: int) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix=f"mf-bench-docs-{backend}-"))
    port = free_port()
    proc = start_web(url, backend, folder, port)
    base = f"http://127.0.0.1:{port}"
    ubns = Ubns()
    best: dict[str, Any] = {}
    try:
        cookies = staff_cookies(base)
        # A first round warms the process up (its threadpool, glibc's arenas, pools) and is not counted;
        # the second, with small documents, is the baseline of the registrations themselves.
        for number, round_size in enumerate([SMALL, SMALL, *[size] * rounds]):
            tag = uuid.uuid4().hex[:4]
            contents = [document(round_size, f"{tag}{i}") for i in range(parallel)]
            numbers = [ubns.next() for _ in range(parallel)]
            def send(i: int, tag: str = tag, numbers: list[str] = numbers,
                     contents: list[bytes] = contents) -> tuple[int, int | None]:
                return upload(base, i, tag, numbers[i], contents[i])
            up_s, up_peak, up_mb, ups = phase(proc.pid, parallel, send)
            assert all(status == 201 for status, _ in ups), [s for s, _ in ups]
            ids = [application_id for _, application_id in ups]
            down_s, down_peak, down_mb, downs = phase(proc.pid, parallel,
                                                      lambda i, ids=ids: view(base, cookies, ids[i]))
            assert all(status == 200 and got == round_size for status, got in downs), downs[:3]
            if round_size == SMALL:
                if number == 1:
                    best["baseline_rss_mb"] = up_mb
                    best["started_rss_mb"] = up_peak - up_mb
                continue
            for name, seconds, peak, growth in (("upload", up_s, up_peak, up_mb),
                                                ("view", down_s, down_peak, down_mb)):
                # The best throughput of the rounds (the least disturbed by load from elsewhere) and the
                # highest peak RSS and growth.
                was = best.get(name, {"req_s": 0.0, "rss_mb": 0.0, "peak_mb": 0.0})
                best[name] = {"req_s": max(was["req_s"], parallel / seconds),
                              "rss_mb": max(was["rss_mb"], growth), "peak_mb": max(was["peak_mb"], peak)}
                best[name]["mb_s"] = best[name]["req_s"] * size / 2**20
        best["resting_rss_mb"] = kib(proc.pid, "VmRSS") / 1024
    finally:
        proc.terminate()
        proc.wait(60)
        shutil.rmtree(folder, ignore_errors=True)
    return best


def fresh_pg() -> tuple[str, str]:
    from sqlalchemy import create_engine, text

    name = f"mf_bench_docs_{uuid.uuid4().hex[:8]}"
    with create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return name, PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def drop_pg(name: str) -> None:
    from sqlalchemy import create_engine, text

    with create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url",
                        help="an empty database you made (default: a fresh local PostgreSQL one)")
    parser.add_argument("--parallel", type=int, default=20)
    parser.add_argument("--mb", type=float, default=10.0, help="document size in MiB (default 10, the limit)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    size = int(args.mb * 2**20) - 4096  # under storage.max_document_bytes, with the form's other fields
    load = os.getloadavg()[0]
    arenas = os.environ.get("MALLOC_ARENA_MAX", "glibc's default")
    print(f"{args.parallel} parallel, documents of {size / 2**20:.2f} MiB, {args.rounds} rounds, "
          f"load average {load:.1f}, MALLOC_ARENA_MAX {arenas}; limit: documents' share of the peak RSS "
          f"growth <= {LIMIT_MB} MB")
    for backend in ("filesystem", "database"):
        made = None
        url = args.database_url
        if url is None:
            made, url = fresh_pg()
        try:
            db = Database(url)
            init_schema(db)
            with db.session() as session:
                if session.query(StaffUser).filter_by(name=STAFF[0]).first() is None:
                    session.add(StaffUser(name=STAFF[0], role="reviewer",
                                          password_hash=hash_password(STAFF[1])))
            db.dispose()
            figures = run_backend(url, backend, args.parallel, size, args.rounds)
        finally:
            if made:
                drop_pg(made)
        baseline = figures["baseline_rss_mb"]
        print(f"{backend:<10} RSS warmed up {figures['started_rss_mb']:.0f} MB, after the run "
              f"{figures['resting_rss_mb']:.0f} MB; 20 registrations with 50 KB documents: "
              f"peak +{baseline:.1f} MB")
        for name in ("upload", "view"):
            f = figures[name]
            share = f["rss_mb"] - baseline if name == "upload" else f["rss_mb"]
            print(f"  {name:<6} {f['req_s']:6.2f} req/s {f['mb_s']:7.1f} MB/s   "
                  f"peak RSS {f['peak_mb']:4.0f} MB (+{f['rss_mb']:5.1f}), "
                  f"documents' share {share:5.1f} MB = {share / LIMIT_MB:.2f} x limit")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
