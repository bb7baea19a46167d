"""A throw-away Postfix instance for tests, set up the way docs/DEPLOY.md §4 sets up the real one.

Its own config_directory, queue_directory and data_directory live in a temporary folder; /etc/postfix and
the system instance are never touched. main.cf is deploy/postfix/main.cf.snippet as shipped, followed by
what only a test needs (127.0.0.1, its own folders, a relayhost that is the test's sink, short timers);
the transport map is deploy/postfix/transport with mailflow's inbound port replaced by the test's. smtpd
listens on a free port on 127.0.0.1 (master.cf, no chroot). Stopped with ``postfix -c DIR stop``.

Skips when Postfix is not installed, except in CI (CI set) where a missing Postfix fails the test.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.peers import free_port, greets, require_program

POSTFIX = "/usr/sbin/postfix"
POSTMAP = shutil.which("postmap") or "/usr/sbin/postmap"
DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "postfix"
SHIPPED_INBOUND = "[127.0.0.1]:2526"  # where deploy/postfix/transport sends the bounce domain

# A throw-away instance keeps everything in its own folder and listens on 127.0.0.1 only (the bounce
# lab's instance, tests/inbound/lab/postfix.py, starts from these lines too).
INSTANCE_CF = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
"""

# Appended after the shipped snippet: a later line for the same parameter wins in main.cf.
TEST_MAIN_CF = "\n# --- tests/deploy/postfix.py: a throw-away instance ---\n" + INSTANCE_CF + """\
myhostname = relay.mailflow.test
mydestination =
relayhost = [127.0.0.1]:{relay_port}
transport_maps = hash:{root}/conf/transport
alias_maps =
alias_database =
local_recipient_maps =
smtpd_peername_lookup = no
smtp_host_lookup = native
# Short timers: a test waits seconds, not the default minutes.
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
maximal_queue_lifetime = 1m
bounce_queue_lifetime = 1m
smtp_connect_timeout = 5s
"""

# Postfix's own services, none chrooted (column 5 = n), smtpd on the test's port only.
MASTER_CF = """\
127.0.0.1:{smtpd_port} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
local     unix  - n n - - local
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


@dataclass
class PostfixInstance:
    root: Path
    host: str
    port: int

    @property
    def config_dir(self) -> Path:
        return self.root / "conf"

    def log(self) -> str:
        path = self.root / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""

    def master_pid(self) -> int | None:
        path = self.root / "queue" / "pid" / "master.pid"
        with contextlib.suppress(OSError, ValueError):
            return int(path.read_text().strip())
        return None

    def halt(self) -> None:
        """``postfix stop``; the master is killed if it has not exited 10 s later."""
        pid = self.master_pid()
        with contextlib.suppress(subprocess.TimeoutExpired):
            subprocess.run([POSTFIX, "-c", str(self.config_dir), "stop"], capture_output=True, timeout=20)
        if pid is not None:
            _wait_gone(pid, 10)

    def stop(self) -> None:
        self.halt()
        shutil.rmtree(self.root, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); its state in /proc says it is gone for good.
    with contextlib.suppress(OSError):
        return " Z " not in Path(f"/proc/{pid}/stat").read_text().split(")", 1)[1][:3]
    return True


def _wait_gone(pid: int, seconds: float) -> None:
    """Wait for the master to exit after ``postfix stop``; kill it if it lingers (its children follow)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def shipped_transport(inbound_port: int) -> str:
    """deploy/postfix/transport with the inbound port of this test instead of 2526."""
    text = (DEPLOY / "transport").read_text()
    if SHIPPED_INBOUND not in text:
        raise AssertionError(f"deploy/postfix/transport no longer routes to {SHIPPED_INBOUND}")
    return text.replace(SHIPPED_INBOUND, f"[127.0.0.1]:{inbound_port}")


def main_cf(root: Path, relay_port: int) -> str:
    """The shipped snippet with the lines the test sets itself commented out, then the test's lines.

    Postfix would take the later line anyway, but it warns "overriding earlier entry" from every daemon
    at start; postlogd, warning to its own socket (a queue of max_dgram_qlen = 10 datagrams), can then
    block forever and the instance never comes up."""
    ours = TEST_MAIN_CF.format(root=root, relay_port=relay_port)
    names = {line.split("=", 1)[0].strip() for line in ours.splitlines() if "=" in line and line[0] != "#"}
    shipped = [f"# (set below for the test) {line}" if line.split("=", 1)[0].strip() in names else line
               for line in (DEPLOY / "main.cf.snippet").read_text().splitlines()]
    return "\n".join(shipped) + "\n" + ours


def _write_config(root: Path, smtpd_port: int, relay_port: int, inbound_port: int) -> None:
    conf = root / "conf"
    (conf / "main.cf").write_text(main_cf(root, relay_port))
    (conf / "master.cf").write_text(MASTER_CF.format(smtpd_port=smtpd_port))
    (conf / "transport").write_text(shipped_transport(inbound_port))
    subprocess.run([POSTMAP, "-c", str(conf), str(conf / "transport")], check=True, capture_output=True,
                   timeout=30)


def make_root() -> Path:
    # Postfix's daemons run as the postfix user: it must reach the folder, and own data_directory.
    root = Path(tempfile.mkdtemp(prefix="mf-postfix-"))
    root.chmod(0o755)
    for sub in ("conf", "queue", "data"):
        (root / sub).mkdir()
    shutil.chown(root / "data", user="postfix")
    return root


def start_postfix(relay_port: int, inbound_port: int) -> PostfixInstance:
    """Start an instance relaying everything to 127.0.0.1:relay_port and the bounce domain to
    127.0.0.1:inbound_port (the transport map); it answers SMTP when this returns."""
    root = make_root()
    return launch(root, lambda port: _write_config(root, port, relay_port, inbound_port))


def launch(root: Path, write_config: Callable[[int], None],
           wrap: Callable[[list[str]], list[str]] | None = None) -> PostfixInstance:
    """Start Postfix from ``root`` (made by make_root): ``write_config(smtpd_port)`` writes conf/ for a
    free port, ``wrap`` runs ``postfix start`` in another setting (the bounce lab's namespace). Tries a
    few ports; removes ``root`` when it cannot start."""
    detail = ""
    for _attempt in range(5):
        instance = PostfixInstance(root, "127.0.0.1", free_port())
        write_config(instance.port)
        command = [POSTFIX, "-c", str(instance.config_dir), "start"]
        try:
            started = subprocess.run(wrap(command) if wrap else command, capture_output=True, timeout=20)
            detail = started.stdout.decode(errors="replace") + started.stderr.decode(errors="replace")
            deadline = time.monotonic() + 15
            while started.returncode == 0 and time.monotonic() < deadline:
                if greets(instance.port, b"220 "):
                    return instance
                time.sleep(0.05)
        except subprocess.TimeoutExpired:
            detail = "postfix start did not return within 20 s\n"
        detail += instance.log()
        # Port taken between choosing and binding, most likely: stop and try another one.
        instance.halt()
    shutil.rmtree(root, ignore_errors=True)
    raise RuntimeError(f"postfix did not start: {detail[-3000:]}")


def postfix_or_skip() -> None:
    require_program(POSTFIX, "postfix")


@contextlib.contextmanager
def running_postfix(relay_port: int, inbound_port: int) -> Iterator[PostfixInstance]:
    postfix_or_skip()
    instance = start_postfix(relay_port, inbound_port)
    try:
        yield instance
    finally:
        instance.stop()


def delivered_to(log: str, port: int) -> int:
    """How many deliveries the log shows as sent to 127.0.0.1:port."""
    return len(re.findall(rf"relay=[^ ]*\[127\.0\.0\.1\]:{port},.* status=sent", log))
