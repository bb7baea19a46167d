"""A full disk under storage.documents_dir (a real 1 MiB tmpfs, not a simulated error): the registration
gets a clear 503 and nothing is half-stored — no rows, no partial file; once there is room again the same
registration goes through."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from mailflow.context import AppContext
from mailflow.models import Account, Application, Document, OutboxMessage

PDF = b"%PDF-1.7\n" + b"0" * 300_000 + b"\n%%EOF\n"
FIELDS = {
    "account": "example1234", "name": "王小明", "mobile": "0912345678", "email": "example@gmail.com",
    "password": "Harbour2024", "password_confirm": "Harbour2024", "ubn": "04595257",
    "company_phone": "02-12345678#12345", "company_name": "臺灣港務股份有限公司基隆分公司",
    "company_address": "804004高雄市鼓山區蓬萊路10號", "company_owner": "陳大文",
}


@pytest.fixture
def small_disk(ctx: AppContext) -> Iterator[Path]:
    folder = ctx.settings.documents_path
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def register(client: Any) -> Any:
    return client.post("/api/applications", data=FIELDS,
                       files={"document": ("公司登記表.pdf", PDF, "application/pdf")})


def rows(ctx: AppContext) -> int:
    with ctx.db.session() as session:
        return sum(session.scalar(select(func.count()).select_from(t)) or 0
                   for t in (Account, Application, Document, OutboxMessage))


def test_a_full_documents_disk_is_a_clear_503_with_nothing_half_stored(
        client: Any, ctx: AppContext, small_disk: Path) -> None:
    filler = small_disk / "filler"
    filler.write_bytes(b"x" * (1024 * 1024 - 100_000))  # leaves less room than the document needs

    response = register(client)

    assert response.status_code == 503
    body = response.json()
    assert set(body) == {"errors"} and body["errors"], body  # the documented error shape, a zh-TW reason
    assert all(isinstance(v, str) and v for v in body["errors"].values())
    assert rows(ctx) == 0
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]  # no partial document left

    filler.unlink()
    retry = register(client)
    assert retry.status_code == 201, retry.text  # the account name was not taken by a half-stored try
    assert len([p for p in small_disk.iterdir()]) == 1
