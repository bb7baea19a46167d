"""Load figures for the Notifications API: POST /api/v1/notifications (a real send: key check and rate,
the use row, the template's personalisation, the 帳號's verified address, the suppression list, the
outbox row and the notification in one transaction) with wrk, next to a bare uvicorn route that reads a
JSON body, measured in the same run; then the delivery rate of events to a local webhook receiver.

    python bench/notify.py [--seconds 10] [--connections 32] [--rounds 3] [--events 3000]
                           [--database-url URL]

Fair by construction, as bench/verify.py: both servers are the same uvicorn command (one worker, same
flags, same Python), the same wrk (-t4 --latency) loads both with the same body, alternately, --rounds
times; each one's best round is reported with the load average around the run. Every POST carries its
own Idempotency-Key (a Lua script numbers them per wrk thread), so each one is a new notification.
Events: --events events of every type are recorded, a subscriber points at a bare uvicorn route
answering 204, and the delivery job (mailflow.notify.webhooks.deliver_due, what the scheduler runs) is
timed until the subscriber has them all: signed POSTs of 50 accounts' events, each account's in order,
four accounts side by side (webhooks.LANES), the cursor stored every 100.
Uses a temporary SQLite database (or --database-url: an empty database you made) and free ports on
127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.verify import best, fmt_load, free_port, start, wrk  # noqa: E402

BARE_APP = """
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
app = FastAPI()
@app.post("/bare")
async def bare(request: Request):
    body = await request.json()
    return JSONResponse({"id": 1, "status": "queued", "reference": body.get("reference")}, status_code=201)
@app.post("/hook")
async def hook(request: Request):
    await request.body()
    return Response(status_code=204)
@app.get("/")
async def root():
    return {}
"""
BODY = {"template": "pass-issued", "account": "bench0001", "reference": "KL-1150001234",
        "personalisation": {"name": "王小明", "company_name": "臺灣港務股份有限公司基隆分公司",
                            "pass_number": "KL-1150001234", "pass_type": "臨時通行證(人員)",
                            "holder_name": "陳大文", "valid_until": "116年11月30日"}}
# Each wrk thread numbers its own requests; its id keeps the Idempotency-Keys of two threads apart.
LUA = """
local threads, counter = 0, 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(key)s"
wrk.body = %(body)s
function request()
  counter = counter + 1
  local headers = {}
  for name, value in pairs(wrk.headers) do headers[name] = value end
  headers["Idempotency-Key"] = "bench-" .. tostring(tid) .. "-" .. tostring(counter)
  return wrk.format("POST", nil, headers, wrk.body)
end
"""


def lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def seed(env: dict[str, str]) -> str:
    """A verified 帳號 and an API key with room for the whole run; returns the key."""
    from mailflow.config import load_settings
    from mailflow.context import AppContext
    from mailflow.db import init_schema
    from mailflow.models import Account, AccountStatus
    from mailflow.notify.apikeys import add_key
    from mailflow.timeutil import now

    ctx = AppContext.from_settings(load_settings(None, env))
    init_schema(ctx.db)
    with ctx.db.session() as session:
        session.add(Account(account="bench0001", account_key="bench0001", name="王小明", mobile="0912345678",
                            email="bench@example.com", email_key="bench@example.com", password_hash="x",
                            status=AccountStatus.APPROVED, approved_at=now(), email_verified_at=now(),
                            email_verified_address="bench@example.com"))
        _row, key = add_key(session, ctx.settings, "bench", ["notify"], 1_000_000)
    ctx.db.dispose()
    return key


def event_delivery(env: dict[str, str], hook_url: str, count: int) -> dict[str, float]:
    """``count`` events delivered to ``hook_url`` by the delivery job; events/s and the job's rounds."""
    from mailflow.config import load_settings
    from mailflow.context import AppContext
    from mailflow.models import Account, WebhookSubscriber
    from mailflow.notify import webhooks
    from mailflow.notify.events import EVENT_TYPES, emit_events

    ctx = AppContext.from_settings(load_settings(None, env))
    with ctx.db.session() as session:
        webhooks.add_subscriber(session, hook_url, list(EVENT_TYPES))
    with ctx.db.session() as session:  # events of 50 accounts: delivered in lanes, each account in order
        owners = []
        for n in range(50):
            owner = Account(account=f"events{n:03d}", account_key=f"events{n:03d}", name="王小明",
                            mobile="0912345678", email=f"events{n}@example.com",
                            email_key=f"events{n}@example.com", password_hash="x")
            session.add(owner)
            session.flush()
            owners.append(owner.id)
        emit_events(session, [(EVENT_TYPES[n % len(EVENT_TYPES)], owners[n % len(owners)], {"n": n})
                              for n in range(count)])
    started, rounds, delivered = time.perf_counter(), 0, 0
    while delivered < count and rounds < 1000:
        delivered += webhooks.deliver_due(ctx).delivered
        rounds += 1
    elapsed = time.perf_counter() - started
    with ctx.db.session() as session:
        row = session.query(WebhookSubscriber).one()
        stored = row.delivered
    ctx.db.dispose()
    return {"events": float(stored), "seconds": elapsed, "rate": stored / elapsed, "rounds": float(rounds)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--database-url", default="", help="an empty database instead of temporary SQLite")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    work = Path(tempfile.mkdtemp(prefix="mailflow-bench-notify-"))
    bare_port, app_port = free_port(), free_port()
    db_url = args.database_url or f"sqlite:///{work / 'bench.db'}"
    env = {**os.environ, "MAILFLOW_DATABASE__URL": db_url, "MAILFLOW_HTTP__PORT": str(app_port),
           "MAILFLOW_HTTP__BASE_URL": f"http://127.0.0.1:{app_port}",
           "MAILFLOW_STORAGE__DOCUMENTS_DIR": str(work / "documents"), "PYTHONPATH": str(ROOT)}
    settings_env = {k: v for k, v in env.items() if k.startswith("MAILFLOW_")}
    key = seed(settings_env)
    body = json.dumps(BODY, ensure_ascii=False)
    script = work / "post.lua"
    script.write_text(LUA % {"key": key, "body": lua_string(body)}, encoding="utf-8")
    (work / "bare_app.py").write_text(BARE_APP)
    uvicorn = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--log-level", "warning"]
    servers = [
        start([*uvicorn, "--port", str(bare_port), "--app-dir", str(work), "bare_app:app"], env, bare_port),
        start([*uvicorn, "--port", str(app_port), "--factory", "bench.verify_app:create"], env, app_port),
    ]
    load_before = os.getloadavg()
    try:
        bares, posts = [], []
        for _ in range(max(1, args.rounds)):
            bares.append(wrk(f"http://127.0.0.1:{bare_port}/bare", args.seconds, args.connections,
                             script=str(script)))
            posts.append(wrk(f"http://127.0.0.1:{app_port}/api/v1/notifications", args.seconds,
                             args.connections, script=str(script)))
        bare, post = best(bares), best(posts)
        delivery = event_delivery(settings_env, f"http://127.0.0.1:{bare_port}/hook", args.events)
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()
    backend = db_url.split(":", 1)[0].split("+", 1)[0]
    print(f"connections: {args.connections}, one uvicorn worker each, {backend}, {os.cpu_count()} cores; "
          f"load average (1/5/15 min) before {fmt_load(load_before)}, after {fmt_load(load_after)}")
    for name, rows in (("bare POST", bares), ("POST /api/v1/notifications", posts)):
        print(f"  {name} rounds: " + ", ".join(f"{r['rps']:.0f} req/s p99 {r['p99']:.1f} ms" for r in rows))
    for name, row in (("bare POST", bare), ("POST notifications", post)):
        print(f"{name:<20} {row['rps']:>9.1f} req/s  p50 {row['p50']:>7.2f} ms  p99 {row['p99']:>8.2f} ms"
              f"  non-2xx {row['errors']:.0f}")
    print(f"POST notifications / bare ratio: {post['rps'] / bare['rps']:.2f}")
    print(f"event delivery: {delivery['events']:.0f} events in {delivery['seconds']:.2f} s = "
          f"{delivery['rate']:.0f} events/s to one subscriber ({delivery['rounds']:.0f} job rounds)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
