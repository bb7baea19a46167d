"""The shipped deploy/ files as an operator installs them: systemd accepts the units, their commands are
ones `mailflow` accepts, and the environment files hold only real settings — and refuse to start while
their CHANGE-ME placeholders are left in. (No systemd runs here to start the units; the tests that run
`mailflow run --role …` in a subprocess cover what the units start.)"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from mailflow.cli import build_parser
from mailflow.config import ConfigError, load_settings
from tests.peers import require_program

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
INSTALLED_AT = "/srv/mailflow/venv/bin/mailflow"
UNITS = ("mailflow-web.service", "mailflow-worker@.service")


def unit_lines(name: str, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in (DEPLOY / name).read_text().splitlines()
            if line.startswith(f"{key}=")]


def verify(units: list[Path]) -> str:
    """What `systemd-analyze verify` says of the units: nothing when they are right."""
    require_program("/usr/bin/systemd-analyze", "systemd")
    done = subprocess.run(["systemd-analyze", "verify", *map(str, units)], capture_output=True, text=True,
                          timeout=60, cwd=units[0].parent)
    said = (done.stdout + done.stderr).strip()
    return said if done.returncode == 0 else f"{said} (exit {done.returncode})"


def installed_copy(tmp_path: Path, name: str, instance: str = "1") -> Path:
    """The unit as installed, its ExecStart pointing at this machine's mailflow (verify checks that the
    command exists) and a template unit instantiated."""
    mailflow = shutil.which("mailflow")
    assert mailflow is not None, "pip install -e . puts mailflow on PATH"
    text = (DEPLOY / name).read_text().replace(INSTALLED_AT, mailflow)
    copy = tmp_path / name.replace("@.", f"@{instance}.")
    copy.write_text(text)
    return copy


def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    assert verify([installed_copy(tmp_path, name) for name in UNITS]) == ""


def test_the_unit_check_would_catch_a_mistake(tmp_path: Path) -> None:
    broken = installed_copy(tmp_path, "mailflow-web.service")
    broken.write_text(broken.read_text().replace("Restart=always", "Restart=sometimes"))
    assert "restart specifier" in verify([broken])


@pytest.mark.parametrize("name", UNITS)
def test_each_unit_runs_a_command_mailflow_accepts(name: str) -> None:
    (command,) = unit_lines(name, "ExecStart")
    program, *args = shlex.split(command)
    assert program == INSTALLED_AT
    parsed = build_parser().parse_args(args)  # exits (fails the test) on an unknown command or option
    assert parsed.command == "run" and parsed.role == {"mailflow-web.service": "web"}.get(name, "worker")


def example_env(*names: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for name in names:
        for line in (DEPLOY / name).read_text().splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                key, _, value = line.partition("=")
                env[key.strip()] = value.strip()
    return env


def test_the_example_environment_files_hold_real_settings_once_filled_in() -> None:
    env = example_env("mailflow.env.example", "worker-1.env.example")
    assert env and all(key.startswith("MAILFLOW_") and "__" in key for key in env), env
    filled = {**env, "MAILFLOW_SECURITY__SECRET_KEY": "a-real-production-secret-key-0123456789"}
    settings = load_settings(None, filled)
    assert settings.smtp.mode == "relay" and settings.inbound.smtp_port == 2526
    assert settings.database.url.startswith("postgresql+psycopg://")
    assert settings.schedule.lease_seconds == 300


def test_an_example_left_unfilled_refuses_to_start() -> None:
    with pytest.raises(ConfigError, match="security.secret_key"):
        load_settings(None, example_env("mailflow.env.example"))
