"""A throw-away Dovecot LMTP server with a quota, the lab's full mailbox: user ``full`` may store 1 KB,
so any real mail to ``full@…`` is refused with Dovecot's own "552 5.2.2 … Quota exceeded" and the MTA
that handed it over writes a mailboxfull DSN. Unknown users get Dovecot's "550 5.1.1 … User doesn't
exist". Needs dovecot-lmtpd (scripts/test.sh installs it); the quota plugin is dovecot-core's.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.inbound.dovecot import BASE_CONFIG, DOVECOT, mail_owner
from tests.inbound.lab.daemon import Daemon, first_greeting, spawn
from tests.peers import free_port, require_program

LMTP_BINARY = "/usr/lib/dovecot/lmtp"
QUOTA_USER = "full"

CONFIG = "protocols = lmtp\n" + BASE_CONFIG + """\
postmaster_address = postmaster@lmtp.lab.test
hostname = lmtp.lab.test
mail_location = maildir:{root}/mail/%n
mail_plugins = quota
lmtp_rcpt_check_quota = no
auth_username_format = %n
passdb {{
  driver = passwd-file
  args = {root}/users
}}
userdb {{
  driver = passwd-file
  args = {root}/users
}}
plugin {{
  quota = maildir:User quota
  quota_rule = *:storage=1K
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {port}
  }}
  unix_listener lmtp {{
    mode = 0600
  }}
}}
"""


class LmtpServer(Daemon):
    def __init__(self, root: Path, port: int, process: subprocess.Popen[bytes]) -> None:
        self.root, self.port, self.process = root, port, process

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return self.output() + (path.read_text(errors="replace") if path.exists() else "")


def lmtp_or_skip() -> None:
    require_program(DOVECOT, "dovecot-core")
    require_program(LMTP_BINARY, "dovecot-lmtpd")


def start_lmtp() -> LmtpServer:
    root = Path(tempfile.mkdtemp(prefix="mf-lab-lmtp-"))
    root.chmod(0o755)
    uid, gid = mail_owner()
    for sub in ("run", "state", "mail"):
        (root / sub).mkdir()
    shutil.chown(root / "mail", uid, gid)
    (root / "users").write_text(f"{QUOTA_USER}::{uid}:{gid}::{root}/mail/{QUOTA_USER}::\n")

    def launch() -> LmtpServer:
        port = free_port()
        (root / "dovecot.conf").write_text(CONFIG.format(root=root, port=port))
        return LmtpServer(root, port, spawn([DOVECOT, "-F", "-c", str(root / "dovecot.conf")], root))

    return first_greeting("dovecot lmtp", root, launch)
