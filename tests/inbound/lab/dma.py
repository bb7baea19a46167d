"""DMA, the DragonFly Mail Agent, in the bounce lab: Debian's dma, unpacked (packages.py). DMA has no
daemon and no SMTP listener: every mail is one ``dma -D -f sender recipient`` process (``-D``: in the
foreground, so the lab holds it and stops it), which queues the mail in its spool, delivers it, and —
on a temporary failure — sleeps and tries again in the same process until it delivers or bounces.

Its configuration is compiled in (/etc/dma/dma.conf, dma.8): each process runs in a lab namespace with
the lab's dma.conf laid over /etc (namespace.World's overlay), naming the spool, aliases and mail name in
a temporary folder. DMA sends every remote mail to one SMARTHOST and PORT, or, without one, to the
domain's MX on PORT: each route gets its own dma.conf (SMARTHOST = the route's address and port), and
a mail is handed to the process whose configuration is its recipient's route; nohost.lab.invalid's
has no SMARTHOST, so DMA looks the MX up in the lab's DNS and gets NXDOMAIN.

The bounce goes to the sender through the same process, so to the same smarthost: the lab's senders
are therefore local to DMA (``lab-dma-<cell>@dma.lab.test``, aliased to the system user ``mail``, the
user DMA drops root privileges to), DMA appends its bounce to /var/mail/mail (a folder of the lab
bound there), and ``flush`` hands every new bounce in that mbox to the catcher, for the cell's sender.

Retrying now: ``dma -q`` touches <spool>/flush (flushqueue_signal) and a sleeping process retries at
once when the flush file is newer than its sleep (dma.c, deliver(): flushqueue_since) and its sleep is
cut short (SIGHUP, which DMA catches for this; sent once DMA has its handler, see catches_sighup).
``flush`` touches the file itself and signals the lab's own processes: ``dma -q`` would also start its
own delivery of any mail not yet locked by the process that queued it, with the route of the flushing
process's configuration.
Queue lifetime: DMA gives up when the queue file's mtime is more than MAX_TIMEOUT (5 days, compiled in)
old (dma.c, deliver()); ``flush`` sets the mtime of every queue file older than 4 s back 6 days — the
4-second queue lifetime the other MTAs of the lab are configured with.

Not produced: an unknown local user (DMA looks a local recipient up when it is handed the mail and
refuses it there, "invalid recipient", exit 65: no bounce); the LMTP cells (DMA speaks SMTP only); relay
denied (DMA has no listener of its own to refuse relaying).
"""

from __future__ import annotations

import fcntl
import os
import pwd
import re
import shutil
import signal
import smtplib
import subprocess
import tempfile
import time
from email import message_from_bytes
from email.policy import compat32
from pathlib import Path

from tests.inbound.lab.cells import CATCHER
from tests.inbound.lab.daemon import end
from tests.inbound.lab.expect import Expect
from tests.inbound.lab.namespace import World
from tests.inbound.lab.packages import Packages, unpacked
from tests.inbound.lab.peers import CATCHER_HOST
from tests.inbound.lab.world import Lab, Mta

PACKAGE = "dma"
PACKAGES = Packages((PACKAGE,))
available, require = PACKAGES.available, PACKAGES.require
HOSTNAME = "dma.lab.test"
NOT_PRODUCED = frozenset({"userunknown", "mailboxfull", "nomailbox", "norelaying"})  # see the docstring
MAILBOX_USER = "mail"  # DMA's DMA_ROOT_USER: a local user on every Debian system
LIFETIME_SECONDS = 4
AGED_SECONDS = 6 * 24 * 3600  # past MAX_TIMEOUT, five days

DMA_CONF = """\
SPOOLDIR {root}/spool
ALIASES {root}/aliases
MAILNAME {hostname}
{smarthost}"""

ERROR = "There was an error delivering your mail to <{recipient}>."
# What DMA writes: a plain-text report (no delivery-status part) with its own sentence for the failure
# or the next hop's reply after "did not like our <command>:" — the reply's enhanced code is the only
# status in it. The next hop is aiosmtpd: DMA sends no SIZE parameter (RFC 1870), so a mail past the
# size limit is refused only after the whole of it, with aiosmtpd's bare "552 Error: Too much mail data".
# The parser reads that as a full mailbox, which is what RFC 5321 4.2.2 names 552 ("exceeded storage
# allocation") and what its NTT DOCOMO rule reads those same words as: without an enhanced code or a
# word of size, the reply says nothing the parser could tell a too-big mail by. Pinned as read (soft,
# like the cell).
EXPECTED = {
    "hostunknown": Expect("", says=(ERROR, "DNS lookup failure: host nohost.lab.invalid not found")),
    "mesgtoobig": Expect("", says=(ERROR, "did not like our final DATA:\n552 Error: Too much mail data"),
                         reading=("mailboxfull", False)),
    "expired": Expect("", says=(ERROR, "Could not deliver for the last 432000 seconds. Giving up.")),
    "later": Expect("", says=(ERROR, "did not like our RCPT TO:\n550 5.1.1 <{recipient}>"), quoted="5.1.1"),
    "blocked": Expect("", says=(ERROR, "did not like our RCPT TO:\n554 5.7.1 Service unavailable"),
                      quoted="5.7.1"),
}
MISREAD: dict[str, str] = {}


class LabDma(Mta):
    name = "dma"
    hostname = HOSTNAME
    not_produced = NOT_PRODUCED

    def __init__(self, binary: Path, root: Path, worlds: dict[str, World], catcher_port: int) -> None:
        self.binary, self.root, self.worlds, self.catcher_port = binary, root, worlds, catcher_port
        self.processes: list[subprocess.Popen[bytes]] = []
        self.read_up_to = 0

    def submit(self, sender: str, recipient: str, raw: bytes) -> None:
        local = sender.split("@", 1)[0]
        with (self.root / "aliases").open("a") as aliases:
            aliases.write(f"{local}: {MAILBOX_USER}\n")
        domain = recipient.rsplit("@", 1)[1]
        world = self.worlds.get(domain, self.worlds[""])
        with (self.root / "output").open("ab") as output:
            process = subprocess.Popen(world.command([str(self.binary), "-D", "-f", f"{local}@{HOSTNAME}",
                                                      recipient]),
                                       stdin=subprocess.PIPE, stdout=output, stderr=subprocess.STDOUT)
        self.processes.append(process)
        assert process.stdin is not None
        process.stdin.write(raw.replace(b"\r\n", b"\n"))  # a local submission: the local line ending
        process.stdin.close()

    def flush(self) -> None:
        now = time.time()
        for queued in (self.root / "spool").glob("Q*"):
            try:
                mtime = queued.stat().st_mtime
            except FileNotFoundError:
                continue
            if now - LIFETIME_SECONDS > mtime > now - AGED_SECONDS:
                os.utime(queued, (now - AGED_SECONDS, now - AGED_SECONDS))
        (self.root / "spool" / "flush").touch()
        for process in self.processes:
            if process.poll() is None and catches_sighup(process.pid):
                process.send_signal(signal.SIGHUP)
        self.forward_bounces()

    def forward_bounces(self) -> None:
        """Every bounce DMA appended to the mbox since the last call, to the catcher, for the cell's sender
        (the bounce's To: is the local sender, lab-dma-<cell>@dma.lab.test)."""
        mbox = self.root / "mail" / MAILBOX_USER
        with mbox.open("rb") as file:
            fcntl.flock(file, fcntl.LOCK_SH)  # DMA writes a message under an exclusive lock
            file.seek(self.read_up_to)
            new = file.read()
        self.read_up_to += len(new)
        # DMA starts each message but the mbox's first with "\nFrom " (local.c, deliver_local).
        for chunk in re.split(b"(?:^|\n)From ", new):
            if not chunk:
                continue
            # Without the rest of the "From " line; CRLF for SMTP.
            raw = chunk.split(b"\n", 1)[1].replace(b"\n", b"\r\n")
            to = str(message_from_bytes(raw, policy=compat32).get("To", ""))
            with smtplib.SMTP(CATCHER_HOST, self.catcher_port, local_hostname=HOSTNAME, timeout=30) as smtp:
                smtp.sendmail("", [f"{to.split('@', 1)[0]}@{CATCHER}"], raw)

    def log(self) -> str:
        """DMA logs to syslog only, which the lab has not: its output, the spool and the mbox."""
        output = self.root / "output"
        spool = sorted(path.name for path in (self.root / "spool").iterdir())
        mbox = self.root / "mail" / MAILBOX_USER
        return (output.read_text(errors="replace") if output.exists() else "") + f"spool: {spool}\n" + (
            mbox.read_text(errors="replace")[-3000:] if mbox.exists() else "")

    def stop(self) -> None:
        for process in self.processes:
            end(process)
        shutil.rmtree(self.root, ignore_errors=True)


def catches_sighup(pid: int) -> bool:
    """Whether ``pid`` has a SIGHUP handler (/proc's SigCgt): the process is DMA, past its start-up (until
    then a SIGHUP would end it: before exec, in unshare and sh, or before DMA sets its handler)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next((line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), "0")
    return bool(int(caught, 16) & (1 << (signal.SIGHUP - 1)))


def start(lab: Lab) -> LabDma:
    folder = unpacked(PACKAGE)
    root = Path(tempfile.mkdtemp(prefix="mf-lab-dma-"))
    root.chmod(0o755)
    uid = pwd.getpwnam(MAILBOX_USER).pw_uid
    for sub in ("spool", "mail"):
        (root / sub).mkdir()
        os.chown(root / sub, uid, -1)
    (root / "spool").chmod(0o700)
    mbox = root / "mail" / MAILBOX_USER
    mbox.touch(mode=0o600)
    os.chown(mbox, uid, -1)
    (root / "aliases").write_text("")
    routes = {domain: f"SMARTHOST {host}\nPORT {port}\n"
              for domain, (host, port) in lab.routes(0).items() if domain.split(".")[0] in ("peer", "closed")}
    routes[""] = ""  # any other domain: its MX
    worlds = {}
    for domain, smarthost in routes.items():
        name = domain.split(".")[0] or "mx"
        etc = root / f"etc-{name}"
        (etc / "dma").mkdir(parents=True)
        conf = DMA_CONF.format(root=root, hostname=HOSTNAME, smarthost=smarthost)
        (etc / "dma" / "dma.conf").write_text(conf)
        worlds[domain] = World(root / f"world-{name}", HOSTNAME, lab.dns.address,
                               binds=[(root / "mail", "/var/mail")], overlays=[([etc], "/etc", None)])
    return LabDma(folder / "usr" / "sbin" / "dma", root, worlds, lab.peers.catcher_port)
