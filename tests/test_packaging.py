"""Issue 16 item 8: `pip install .` (a wheel, not editable) into a fresh virtual environment, run from a
folder under /tmp that holds nothing of the checkout, serves /register and sends a mail rendered from the
templates the wheel carries (mailflow/templates/, package data). The venv sees the already installed
dependencies (--system-site-packages) so no network is needed; mailflow itself comes from the wheel."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.mail.test_daemon import Daemon, register_and_see_the_mail
from tests.peers import free_port

REPO = Path(__file__).resolve().parent.parent
LEFT_OUT = (".git", "build", "dist", "var", "*.egg-info", "__pycache__", ".*_cache", ".venv", ".hypothesis",
            "test-artifacts")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with mailflow installed from a wheel built from this checkout; returns the venv."""
    work = tmp_path_factory.mktemp("wheel")
    # Built from a copy: pip builds in the source tree, and a build/ left in the checkout could carry
    # files deleted since into the wheel.
    source = work / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*LEFT_OUT))
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(work)],
                   check=True, timeout=600, cwd=work)
    [wheel] = work.glob("mailflow-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True,
                   timeout=300)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--no-deps", "--no-index", "-q",
                    str(wheel)], check=True, timeout=300)
    return venv


def clean_env(tmp_path: Path) -> dict[str, str]:
    """No MAILFLOW_* of the test run, no PYTHONPATH to the checkout; HOME and XDG_DATA_HOME of its own."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("MAILFLOW_", "PYTHON"))}
    return {**keep, "HOME": str(tmp_path / "home"), "XDG_DATA_HOME": str(tmp_path / "data")}


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    folder = tmp_path / "anywhere"
    folder.mkdir()
    return folder


@pytest.mark.once
def test_the_wheel_carries_its_templates_and_static_files(installed: Path, elsewhere: Path,
                                                           tmp_path: Path) -> None:
    probe = ("import json, mailflow, mailflow.paths as p; "
             "print(json.dumps([mailflow.__file__, str(p.templates_dir()), str(p.STATIC_DIR)]))")
    done = subprocess.run([str(installed / "bin" / "python"), "-c", probe], cwd=elsewhere, check=True,
                          capture_output=True, text=True, env=clean_env(tmp_path), timeout=60)
    module, templates, static = (Path(p) for p in json.loads(done.stdout))
    assert module.is_relative_to(installed), module  # the wheel's copy, not the checkout's
    assert templates == module.parent / "templates"
    assert (templates / "registration-received" / "subject.txt").is_file()
    assert (templates / "web" / "register.html").is_file() and (static / "mailflow.css").is_file()
    preview = subprocess.run([str(installed / "bin" / "mailflow"), "preview", "registration-received"],
                             cwd=elsewhere, capture_output=True, text=True, env=clean_env(tmp_path),
                             timeout=60)
    assert preview.returncode == 0 and preview.stdout.startswith("Subject: 通行證系統帳號註冊通知信件")


@pytest.mark.once
def test_an_installed_mailflow_run_from_tmp_serves_register_and_sends_a_mail(
        installed: Path, elsewhere: Path, tmp_path: Path) -> None:
    env = {**clean_env(tmp_path), "MAILFLOW_HTTP__PORT": str(free_port()),
           "MAILFLOW_SCHEDULE__DISPATCH_SECONDS": "0.3"}
    daemon = Daemon(env, tmp_path / "run.log", command=[str(installed / "bin" / "mailflow"), "run"],
                    cwd=elsewhere)
    try:
        daemon.start()
        register_and_see_the_mail(daemon)
        assert daemon.signal(signal.SIGTERM) == 0
    finally:
        daemon.kill_if_running()
    log = (tmp_path / "run.log").read_text(encoding="utf-8")
    # No configuration file anywhere near: the data went to the user's data folder, which run printed,
    # and nothing was written into the folder it ran in.
    data = tmp_path / "data" / "mailflow"
    assert f"database            sqlite:///{data}/var/mailflow.db" in log
    assert (data / "var" / "mailflow.db").is_file() and list(elsewhere.iterdir()) == []
