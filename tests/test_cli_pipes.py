"""The real `mailflow` command at the edges of its pipes: a stdout whose reader went away (`| head -1`)
ends it quietly, and `bounce parse` says on stderr which file it could not read while keeping the
contract's line for every file, exiting 1 when one could not be read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mailflow.context import AppContext
from tests.mail.helpers import queue_mail

REPO = Path(__file__).resolve().parent.parent


def cli_env(db_url: str, tmp_path: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MAILFLOW_")}
    return {**base, "PYTHONPATH": str(REPO), "MAILFLOW_DATABASE__URL": db_url,
            "MAILFLOW_STORAGE__DOCUMENTS_DIR": str(tmp_path / "documents")}


def run_into_closed_pipe(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run the CLI with a stdout pipe whose reading end is already closed: every write to it fails, as
    when `head -1` has read its line and gone. Returns (exit code, stderr)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([sys.executable, "-m", "mailflow", *args], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, env=env, cwd=REPO, timeout=120)
    finally:
        os.close(write_end)
    return done.returncode, done.stderr


def test_outbox_list_into_a_closed_pipe_is_quiet(ctx: AppContext, db_url: str, tmp_path: Path) -> None:
    for i in range(5):
        queue_mail(ctx, f"user{i}@example.com")
    env = cli_env(db_url, tmp_path)
    for args in (["outbox", "list"], ["outbox", "list", "--json"]):
        code, stderr = run_into_closed_pipe(args, env)
        assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
        assert code == 141, (args, stderr)


def test_outbox_list_piped_into_head_prints_only_the_first_line(ctx: AppContext, db_url: str,
                                                                 tmp_path: Path) -> None:
    for i in range(3):
        queue_mail(ctx, f"user{i}@example.com")
    done = subprocess.run(f'"{sys.executable}" -m mailflow outbox list | head -1', shell=True,
                          capture_output=True, text=True, env=cli_env(db_url, tmp_path), cwd=REPO,
                          timeout=120)
    assert done.returncode == 0 and "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr
    assert len(done.stdout.splitlines()) == 1


def test_bounce_parse_names_an_unreadable_file_on_stderr_and_goes_on(tmp_path: Path, db_url: str) -> None:
    missing = "/nonexistent/file.eml"
    readable = tmp_path / "hello.eml"
    readable.write_bytes(b"From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nhello\r\n")
    done = subprocess.run([sys.executable, "-m", "mailflow", "bounce", "parse", missing, str(readable)],
                          capture_output=True, text=True, env=cli_env(db_url, tmp_path), cwd=REPO,
                          timeout=120)
    assert done.returncode == 1
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines[0] == {"file": missing, "kind": "other", "recipients": []}
    assert [line["file"] for line in lines] == [missing, str(readable)]
    warnings = [line for line in done.stderr.splitlines() if missing in line]
    assert len(warnings) == 1 and "cannot read" in warnings[0], done.stderr
    assert str(readable) not in done.stderr
    assert "1 of 2 file(s) could not be read" in done.stderr


def test_bounce_parse_of_readable_files_exits_0(tmp_path: Path, db_url: str) -> None:
    readable = tmp_path / "hello.eml"
    readable.write_bytes(b"From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nhello\r\n")
    done = subprocess.run([sys.executable, "-m", "mailflow", "bounce", "parse", str(readable)],
                          capture_output=True, text=True, env=cli_env(db_url, tmp_path), cwd=REPO,
                          timeout=120)
    assert done.returncode == 0 and done.stderr == ""
    assert json.loads(done.stdout) == {"file": str(readable), "kind": "other", "recipients": []}
