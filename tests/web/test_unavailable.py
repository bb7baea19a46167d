"""Faults the applicant cannot fix, answered clearly: a documents folder that is unusable, a database
that does not answer. Each gets a 503 in the API's shape (a page for the browser form), with nothing
stored."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from mailflow.config import Settings
from mailflow.context import AppContext
from mailflow.web.app import UNAVAILABLE, create_app
from tests.web.test_register_api import FIELDS, PDF, nothing_stored, post


def test_a_documents_folder_that_is_a_file_is_a_clear_503(client: Any, ctx: AppContext,
                                                          tmp_path: Path) -> None:
    blocker = tmp_path / "documents-is-a-file"
    blocker.write_bytes(b"not a folder")
    ctx.settings = ctx.settings.updated(storage={"documents_dir": str(blocker)})
    response = post(client)
    assert response.status_code == 503, response.text
    assert "document" in response.json()["errors"]
    assert blocker.read_bytes() == b"not a folder"
    ctx.settings = ctx.settings.updated(storage={"documents_dir": str(tmp_path / "documents")})
    assert nothing_stored(ctx)


def test_a_database_that_does_not_answer_is_a_clear_503(settings: Settings, tmp_path: Path) -> None:
    # nothing listens on port 9
    settings = settings.updated(database={"url": "postgresql+psycopg://mailflow@127.0.0.1:9/gone"},
                                storage={"documents_dir": str(tmp_path / "documents")})
    down = AppContext.from_settings(settings)
    try:
        with TestClient(create_app(down)) as client:
            api = client.post("/api/applications", data=FIELDS,
                              files={"document": ("proof.pdf", PDF, "application/pdf")})
            form = client.get("/register")  # the form itself needs no database
            found = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            assert form.status_code == 200 and found is not None
            page = client.post("/register", data={**FIELDS, "csrf_token": found.group(1)},
                               files={"document": ("proof.pdf", PDF, "application/pdf")})
    finally:
        down.db.dispose()
    assert api.status_code == 503 and api.json() == {"error": UNAVAILABLE}
    assert api.headers["Retry-After"].isdigit()
    assert list((tmp_path / "documents").glob("*")) == []  # the stored upload was removed again
    assert page.status_code == 503 and "系統暫時無法使用" in page.text and "沒有被儲存" in page.text
