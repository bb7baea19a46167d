"""Sendmail in the bounce lab: Debian's sendmail-bin, unpacked (packages.py), with a sendmail.cf built
at start from an .mc by m4 and Debian's sendmail-cf (the way Debian builds its own), its own queue, pid
and alias files in a temporary folder, run as a foreground daemon (``-bD``) in a lab namespace.

Sendmail has no per-route port, so each lab route gets its own mailer: a copy of the generated esmtp
mailer with the port in ``A=TCP $h PORT`` (plus ``z`` for LMTP, and ``k`` for the route to its own
relay-refusing listener, whose greeting would otherwise read as a loop), named in the mailertable.
Sendmail always lets 127.0.0.1 relay (Relay_ok, "originated locally"), so its own SMTP client connects
from 127.0.0.2: to its second listener it is a stranger, and gets "Relaying denied".

An unknown local user is refused at RCPT over SMTP (the client, not Sendmail, would write the bounce):
that one mail is handed over on the command line instead (``-oem``: mail errors back; Sendmail looks
the user up at once, writes the DSN and exits 67).
Timeout.queuereturn=4s: a mail the closed port never takes comes back after four seconds.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.inbound.lab.daemon import Daemon, first_greeting, spawn
from tests.inbound.lab.expect import Expect
from tests.inbound.lab.namespace import World
from tests.inbound.lab.packages import Packages, unpacked
from tests.inbound.lab.world import DENY_HOST, Lab, Mta
from tests.peers import free_port, require_program

PACKAGE = "sendmail-bin"
CF_PACKAGE = "sendmail-cf"
PACKAGES = Packages((PACKAGE, CF_PACKAGE))
HOSTNAME = "sendmail.lab.test"
M4 = shutil.which("m4") or "/usr/bin/m4"

MC = """\
divert(-1)
divert(0)dnl
VERSIONID(`mailflow bounce lab')dnl
OSTYPE(`linux')dnl
define(`confDOMAIN_NAME', `{hostname}')dnl
define(`QUEUE_DIR', `{root}/queue')dnl
define(`STATUS_FILE', `{root}/statistics')dnl
define(`confPID_FILE', `{root}/sendmail.pid')dnl
define(`ALIAS_FILE', `{root}/aliases')dnl
define(`confSERVICE_SWITCH_FILE', `{root}/service.switch')dnl
define(`confDONT_PROBE_INTERFACES', `True')dnl
define(`confDONT_BLAME_SENDMAIL', `TrustStickyBit')dnl
define(`confDEF_USER_ID', `65534:65534')dnl
define(`confCLIENT_OPTIONS', `Family=inet, Addr=127.0.0.2')dnl
define(`confTO_IDENT', `0')dnl
define(`confTO_CONNECT', `2s')dnl
define(`confTO_QUEUERETURN', `4s')dnl
define(`confTO_QUEUEWARN', `1h')dnl
define(`confMIN_QUEUE_AGE', `0')dnl
define(`confLOG_LEVEL', `9')dnl
DAEMON_OPTIONS(`Port={port}, Addr=127.0.0.1, Name=MTA')dnl
DAEMON_OPTIONS(`Port={deny_port}, Addr={deny_host}, Name=MTA-deny')dnl
FEATURE(`nocanonify')dnl
FEATURE(`accept_unresolvable_domains')dnl
FEATURE(`mailertable', `hash {root}/mailertable')dnl
MAILER(`local')dnl
MAILER(`smtp')dnl
"""

ESMTP_MAILER = re.compile(r"^Mesmtp,.*?\n(?=\S|\n)", re.MULTILINE | re.DOTALL)


def lab_mailers(cf: str, routes: dict[str, tuple[str, int, str]]) -> str:
    """A copy of the generated esmtp mailer per route: ``lab<name>``, port added, extra flags."""
    found = ESMTP_MAILER.search(cf)
    if found is None:
        raise AssertionError("the generated sendmail.cf has no esmtp mailer")
    esmtp = found.group(0)
    mailers = []
    for domain, (_host, port, flags) in routes.items():
        mailer = esmtp.replace("Mesmtp,", f"Mlab{domain.split('.')[0]},", 1)
        mailer = mailer.replace("A=TCP $h", f"A=TCP $h {port}").replace("F=mDFMuXa", f"F=mDFMuXa{flags}")
        mailers.append(mailer)
    return "\n# --- the bounce lab's routes ---\n" + "".join(mailers)


# What Sendmail writes: its own codes (User unknown 5.1.1, Host unknown 5.1.2, 4.4.7 when the message
# could not be delivered for Timeout.queuereturn) and the next hop's enhanced code when there is one,
# except for the blocklist refusal, which it reports as 5.0.0.
EXPECTED = {
    "userunknown": Expect("5.1.1"),
    "hostunknown": Expect("5.1.2"),
    "mailboxfull": Expect("5.2.2"),
    "nomailbox": Expect("5.1.1"),
    "mesgtoobig": Expect("5.3.4"),
    "norelaying": Expect("5.7.1"),
    "expired": Expect("4.4.7"),
    "later": Expect("5.1.1"),
    "blocked": Expect("5.0.0"),
}
MISREAD: dict[str, str] = {}

class LabSendmail(Daemon, Mta):
    name = "sendmail"
    hostname = HOSTNAME

    def __init__(self, binary: Path, world: World, root: Path, port: int,
                 process: subprocess.Popen[bytes]) -> None:
        self.binary, self.world, self.root, self.port, self.process = binary, world, root, port, process

    def sendmail(self, *args: str) -> list[str]:
        return self.world.command([str(self.binary), "-C", str(self.root / "sendmail.cf"), *args])

    def submit(self, sender: str, recipient: str, raw: bytes) -> None:
        if not recipient.endswith("@" + self.hostname):
            super().submit(sender, recipient, raw)
            return
        done = subprocess.run(self.sendmail("-odq", "-oem", "-oi", "-f", sender, recipient), input=raw,
                              capture_output=True, timeout=30)
        # 67 (EX_NOUSER): Sendmail looked the user up at once and has already mailed the DSN back.
        if done.returncode not in (0, 67):
            raise AssertionError(f"sendmail did not queue the mail: {done.stderr.decode(errors='replace')}")

    def flush(self) -> None:
        subprocess.run(self.sendmail("-q"), capture_output=True, timeout=30)

    def log(self) -> str:
        """Sendmail logs only to syslog, which the lab has not: the queue as ``mailq`` shows it."""
        done = subprocess.run(self.sendmail("-bp"), capture_output=True, timeout=30)
        return self.output() + done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")


def available() -> bool:
    return PACKAGES.available() and Path(M4).exists()


def require() -> None:
    PACKAGES.require()
    require_program(M4, "m4")


def binary() -> Path:
    return unpacked(PACKAGE) / "usr" / "libexec" / "sendmail" / "sendmail"


def _write_config(root: Path, lab: Lab, port: int, deny_port: int) -> None:
    cf_dir = unpacked(CF_PACKAGE) / "usr" / "share" / "sendmail" / "cf"
    mc = MC.format(hostname=HOSTNAME, root=root, port=port, deny_host=DENY_HOST, deny_port=deny_port)
    built = subprocess.run([M4, f"-D_CF_DIR_={cf_dir}/", str(cf_dir / "m4" / "cf.m4"), "-"],
                           input=mc.encode(), capture_output=True, timeout=30, check=True)
    routes = {domain: (host, port, "k" if domain.startswith("deny.") else "")
              for domain, (host, port) in lab.routes(deny_port).items()}
    routes["lmtp.lab.test"] = ("127.0.0.1", lab.lmtp.port, "z")
    cf = built.stdout.decode()
    (root / "sendmail.cf").write_text(cf + lab_mailers(cf, routes))
    (root / "service.switch").write_text("hosts dns\naliases files\n")
    (root / "aliases").write_text("postmaster: root\nMAILER-DAEMON: postmaster\n")
    table = "".join(f"{domain} lab{domain.split('.')[0]}:[{host}]\n"
                    for domain, (host, _port, _flags) in routes.items())
    makemap = unpacked(PACKAGE) / "usr" / "libexec" / "sendmail" / "makemap"
    subprocess.run([str(makemap), "-C", str(root / "sendmail.cf"), "hash", str(root / "mailertable")],
                   input=table.encode(), capture_output=True, timeout=30, check=True)


def start(lab: Lab) -> LabSendmail:
    sendmail = binary()
    root = Path(tempfile.mkdtemp(prefix="mf-lab-sendmail-"))
    root.chmod(0o755)
    (root / "queue").mkdir(mode=0o700)
    world = World(root / "world", HOSTNAME, lab.dns.address)

    def launch() -> LabSendmail:
        port, deny_port = free_port(), free_port(DENY_HOST)
        _write_config(root, lab, port, deny_port)
        newaliases = world.run([str(sendmail), "-C", str(root / "sendmail.cf"), "-bi"])
        if newaliases.returncode != 0:
            raise RuntimeError(f"sendmail -bi: {newaliases.stderr.decode(errors='replace')}")
        # -bD: the daemon in the foreground; -q1s: a queue run every second besides the lab's own.
        process = spawn(world.command([str(sendmail), "-C", str(root / "sendmail.cf"), "-bD", "-q1s"]), root)
        return LabSendmail(sendmail, world, root, port, process)

    return first_greeting("sendmail", root, launch)
