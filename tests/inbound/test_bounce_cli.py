"""`mailflow bounce parse` through the real entry point: the contract's line, and nothing but the parser
loaded (no settings, database, web or scheduler modules: the one-file start-up of issue 12)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SAMPLE = Path(__file__).parent / "samples" / "smail.eml"

_PROBE = """
import json, sys
from mailflow.cli import main
code = main(sys.argv[1:])
heavy = ("sqlalchemy", "alembic", "fastapi", "starlette", "uvicorn", "apscheduler", "jinja2", "psycopg",
         "email_validator", "mailflow.db", "mailflow.web", "mailflow.models", "mailflow.scheduler",
         "mailflow.config")
loaded = sorted(m for m in sys.modules if m.startswith(heavy))
print(json.dumps({"code": code, "loaded": loaded}), file=sys.stderr)
"""


def _run(*args: str) -> tuple[list[dict[str, object]], dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    return lines, json.loads(done.stderr.strip().splitlines()[-1])


def test_bounce_parse_loads_only_the_parser(tmp_path: Path) -> None:
    missing = tmp_path / "missing.eml"
    lines, probe = _run("bounce", "parse", str(SAMPLE), str(missing))
    assert probe == {"code": 1, "loaded": []}  # a file could not be read: the exit code says so
    assert [line["file"] for line in lines] == [str(SAMPLE), str(missing)]
    assert lines[1] == {"file": str(missing), "kind": "other", "recipients": []}
    assert lines[0]["kind"] == "bounce"
    recipients = lines[0]["recipients"]
    assert isinstance(recipients, list) and len(recipients) == 1
    assert set(recipients[0]) == {"address", "action", "hard", "reason", "status", "diagnostic"}


def test_a_config_option_before_the_command_changes_nothing() -> None:
    lines, probe = _run("--config", "/nonexistent.toml", "bounce", "parse", str(SAMPLE))
    assert probe["code"] == 0 and lines[0]["kind"] == "bounce"

