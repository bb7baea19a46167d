"""A throw-away Dovecot IMAP server for tests: its own config, user, maildir and sockets in a temporary
folder, listening on a free port on 127.0.0.1 with plaintext login; stopped and removed afterwards.

Skips when Dovecot is not installed, except in CI (CI set) where a missing Dovecot fails the test.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.peers import free_port, greets, require_program

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USER = "mailflow-test"
PASSWORD = "not-a-secret-dovecot-test"

# A throw-away server keeps everything in its own folder and listens on 127.0.0.1 only (the bounce
# lab's LMTP server, tests/inbound/lab/lmtp.py, starts from these lines too).
BASE_CONFIG = """\
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = no
first_valid_uid = 0
first_valid_gid = 0
service anvil {{
  chroot =
}}
"""

CONFIG = "protocols = imap\n" + BASE_CONFIG + """\
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_uid = {uid}
mail_gid = {gid}
mail_location = maildir:{root}/mail/%u
mail_plugins =
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service imap-login {{
  chroot =
}}
"""


@dataclass
class DovecotServer:
    host: str
    port: int
    user: str
    password: str
    root: Path
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        self._end_process()
        shutil.rmtree(self.root, ignore_errors=True)

    def _end_process(self) -> None:
        """SIGTERM to Dovecot's whole process group: its imap processes say "* BYE Server shutting down."
        and close at once. Ending the master alone left them holding their clients for 10 s more, until
        they noticed the master was gone (a reader in IDLE saw its connection close that much later)."""
        if self.process.poll() is None:
            _signal_group(self.process, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                _signal_group(self.process, signal.SIGKILL)
                self.process.wait()
        deadline = time.monotonic() + 5
        while _group_alive(self.process) and time.monotonic() < deadline:
            time.sleep(0.02)  # its imap processes finish their BYE
        _signal_group(self.process, signal.SIGKILL)  # one that outlived that: nothing may hold the port

    def restart(self) -> None:
        """Stop Dovecot (every client connection is dropped) and start it again on the same port with the
        same mail, as a server restart does."""
        self._end_process()
        self.process = _launch(self.root)
        deadline = time.monotonic() + 15
        while not greets(self.port, b"* OK"):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("dovecot did not come back after a restart")
            time.sleep(0.05)


def mail_owner() -> tuple[int, int]:
    """Who owns the mail files: the current user, except root, whom Dovecot never lets read mail."""
    if os.getuid() != 0:
        return os.getuid(), os.getgid()
    nobody = pwd.getpwnam("nobody")
    return nobody.pw_uid, nobody.pw_gid


def _launch(root: Path) -> subprocess.Popen[bytes]:
    # a session (and process group) of its own, so that stopping it reaches every Dovecot process
    return subprocess.Popen([DOVECOT, "-F", "-c", str(root / "dovecot.conf")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def _group_alive(process: subprocess.Popen[bytes]) -> bool:
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    return True


def start_dovecot(extra_config: str = "") -> DovecotServer:
    """``extra_config`` is appended to the configuration, e.g. an ``imap_capability`` without IDLE."""
    # Dovecot's own users (dovenull, dovecot) must reach base_dir: the folder is world-readable.
    root = Path(tempfile.mkdtemp(prefix="mf-dovecot-"))
    root.chmod(0o755)
    for sub in ("run", "state", "mail", "home"):
        (root / sub).mkdir()
    (root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
    uid, gid = mail_owner()
    for sub in ("mail", "home"):
        os.chown(root / sub, uid, gid)
    for _attempt in range(5):
        port = free_port()
        config = root / "dovecot.conf"
        config.write_text(CONFIG.format(root=root, uid=uid, gid=gid, port=port) + extra_config)
        process = _launch(root)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and process.poll() is None:
            if greets(port, b"* OK"):
                return DovecotServer("127.0.0.1", port, USER, PASSWORD, root, process)
            time.sleep(0.05)
        if process.poll() is None:
            process.terminate()
        _out, err = process.communicate()
        log = root / "dovecot.log"
        detail = err.decode(errors="replace") + (log.read_text(errors="replace") if log.exists() else "")
    shutil.rmtree(root, ignore_errors=True)
    raise RuntimeError(f"dovecot did not start: {detail[-2000:]}")


def dovecot_or_skip() -> None:
    require_program(DOVECOT, "dovecot-imapd")


@pytest.fixture
def dovecot() -> Iterator[DovecotServer]:
    dovecot_or_skip()
    server = start_dovecot()
    try:
        yield server
    finally:
        server.stop()
