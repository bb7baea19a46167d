"""OpenSMTPD in the bounce lab: Debian's opensmtpd, unpacked (packages.py), run in the foreground
(``smtpd -d``, its log on stderr) with its own smtpd.conf (``-f``), inside a lab namespace.

smtpd has its paths compiled in — the queue /var/spool/smtpd, the control socket /run/smtpd.sock, the
privilege-separation chroot /var/lib/opensmtpd/empty, its helpers in /usr/libexec/opensmtpd — so the
namespace lays a tmpfs over /var/spool, /run and /var/lib and the package's /usr/libexec over
/usr/libexec: the host's own folders are never touched, and ``smtpctl`` reaches this smtpd only from
inside its namespace (``nsenter``).

The routes are relay actions with a ``host`` URL (``smtp+notls://`` or ``lmtp://``), ``ttl 4s`` on
the closed port's; the second listener tags its sessions DENY and no rule matches a tagged session,
which is how OpenSMTPD refuses to relay. Unknown host: a plain ``relay`` action does the MX lookup.

Not produced: an unknown local user. OpenSMTPD resolves every recipient while the client is still at
RCPT and refuses it there (550 Invalid recipient), so it never writes a DSN for one; the SMTP client
would. Its user-unknown bounce in the lab is the LMTP server's "User doesn't exist" (the nomailbox cell).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.inbound.lab.daemon import Daemon, first_greeting, spawn
from tests.inbound.lab.expect import Expect
from tests.inbound.lab.namespace import World, enter
from tests.inbound.lab.packages import Packages, unpacked
from tests.inbound.lab.world import DENY_HOST, Lab, Mta
from tests.peers import free_port

PACKAGE = "opensmtpd"
PACKAGES = Packages((PACKAGE,))
available, require = PACKAGES.available, PACKAGES.require
HOSTNAME = "opensmtpd.lab.test"
NOT_PRODUCED = frozenset({"userunknown"})  # see the module's docstring
SETPRIV = shutil.which("setpriv") or "/usr/bin/setpriv"

SMTPD_CONF = """\
smtp max-message-size 50M
# No delay warnings: OpenSMTPD warns when the next try is past creation + warn-interval, and every
# forced retry pushes the next try further out (after the lab's dozens of retries, past an hour).
bounce warn-interval 30d

listen on 127.0.0.1 port {port} hostname {hostname}
listen on {deny_host} port {deny_port} hostname {hostname} tag DENY

{route_actions}
action "lmtp" relay host "lmtp://127.0.0.1:{lmtp_port}"
action "mx" relay
action "local" maildir "{root}/maildir/%{{user.username}}"

{route_matches}
match from local ! tag DENY for domain "lmtp.lab.test" action "lmtp"
match from local ! tag DENY for local action "local"
match from local ! tag DENY for any action "mx"
"""


def _routes(routes: dict[str, tuple[str, int]]) -> dict[str, str]:
    actions, matches = [], []
    for domain, (host, port) in routes.items():
        name = domain.split(".")[0]
        ttl = " ttl 4s" if name == "closed" else ""
        actions.append(f'action "{name}" relay host "smtp+notls://{host}:{port}"{ttl}')
        matches.append(f'match from local ! tag DENY for domain "{domain}" action "{name}"')
    return {"route_actions": "\n".join(actions), "route_matches": "\n".join(matches)}


# What OpenSMTPD writes: Status 5.0.0 for every permanent failure. When the queue lifetime runs out it
# sends a "Delivery status notification: delayed" (Action: delayed, Status: 4.4.7, "Envelope expired")
# although the envelope is gone: read as expired, soft, with the action it wrote. It refuses to relay
# with the words it uses for an unknown user ("550 Invalid recipient", test_lab.py shows it), so that
# DSN reads as an unknown user.
EXPECTED = {
    "hostunknown": Expect("5.0.0"),
    "mailboxfull": Expect("5.0.0"),
    "nomailbox": Expect("5.0.0"),
    "mesgtoobig": Expect("5.0.0"),
    "norelaying": Expect("5.0.0", reading=("userunknown", True)),
    "expired": Expect("4.4.7", action="delayed"),
    "later": Expect("5.0.0"),
    "blocked": Expect("5.0.0"),
}
MISREAD: dict[str, str] = {}

class LabOpenSmtpd(Daemon, Mta):
    name = "opensmtpd"
    hostname = HOSTNAME
    not_produced = NOT_PRODUCED

    def __init__(self, folder: Path, root: Path, ports: tuple[int, int], process: subprocess.Popen[bytes],
                 queue_gid: int) -> None:
        self.folder, self.root, self.process, self.queue_gid = folder, root, process, queue_gid
        self.port, self.deny_port = ports

    def smtpctl(self, *args: str) -> list[str]:
        """smtpctl beside this smtpd; it insists on running setgid opensmtpq, as installed."""
        smtpctl = str(self.folder / "usr" / "sbin" / "smtpctl")
        setgid = [SETPRIV, f"--regid={self.queue_gid}", "--clear-groups"]
        return enter(self.process.pid, [*setgid, smtpctl, *args])

    def flush(self) -> None:
        subprocess.run(self.smtpctl("schedule", "all"), capture_output=True, timeout=20)


def start(lab: Lab) -> LabOpenSmtpd:
    folder = unpacked(PACKAGE)
    root = Path(tempfile.mkdtemp(prefix="mf-lab-opensmtpd-"))
    root.chmod(0o755)
    world = World(root / "world", HOSTNAME, lab.dns.address,
                  binds=[(folder / "usr" / "libexec", "/usr/libexec")],
                  tmpfs=["/var/spool", "/run", "/var/lib"],
                  mkdirs=["/var/lib/opensmtpd/empty"])

    def launch() -> LabOpenSmtpd:
        port, deny_port = free_port(), free_port(DENY_HOST)
        conf = root / "smtpd.conf"
        conf.write_text(SMTPD_CONF.format(hostname=HOSTNAME, root=root, port=port, deny_host=DENY_HOST,
                                          deny_port=deny_port, lmtp_port=lab.lmtp.port,
                                          **_routes(lab.routes(deny_port))))
        conf.chmod(0o644)
        # -d: in the foreground, the log on stderr (the output file).
        smtpd = [str(folder / "usr" / "sbin" / "smtpd"), "-d", "-f", str(conf)]
        process = spawn(world.command(smtpd), root, env={**os.environ, "TZ": "UTC"})
        return LabOpenSmtpd(folder, root, (port, deny_port), process, world.uid("opensmtpq"))

    return first_greeting("opensmtpd", root, launch)
