"""Courier in the bounce lab: Debian's courier-mta, courier-base and courier-authlib, unpacked
(packages.py), run from a lab namespace of its own.

Courier's paths are compiled in (/etc/courier, /usr/lib/courier, /var/lib/courier, /run/courier): the
namespace lays the packages' /etc and /usr/lib over the host's (overlays, the lab's own control files
on top), and /var/lib and /run writable over theirs with the writes in the lab's folder — the host's
own folders are never touched. Inside it, a pid namespace of its own (``unshare --pid --fork
--kill-child``): the two ESMTP listeners (couriertcpd + courieresmtpd, as /usr/lib/courier/esmtpd
starts them) and courierd, the scheduler, which runs the esmtp, local and dsn modules; stopping the
lab's process ends them all.

Routes: esmtproutes (``domain: [address],port``, courier.8). The second listener, on DENY_HOST, runs
without RELAYCLIENT, so it relays for nobody ("Relaying denied."); the first has RELAYCLIENT set, the
way Courier's smtpaccess lets the lab's own address relay. queuetime 4s, retries every second
(retryalpha, retrygamma), and ``courier flush`` (inside the namespace) to retry now.

Not produced: an unknown local user — Courier looks a local recipient up when it takes the mail, at
RCPT over SMTP, and its sendmail "displays an error message and exits with a non-zero status"
(sendmail.1): it never writes a DSN for one (the lab runs no authdaemond for those lookups either, so
Courier answers any local RCPT with 450); the LMTP cells (Courier's esmtp module speaks SMTP only).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.inbound.lab.daemon import Daemon, first_greeting, spawn
from tests.inbound.lab.expect import Expect
from tests.inbound.lab.namespace import UNSHARE, World, enter
from tests.inbound.lab.packages import Packages, unpacked
from tests.inbound.lab.world import DENY_HOST, Lab, Mta
from tests.peers import free_port

MTA_PACKAGE, BASE_PACKAGE, AUTHLIB_PACKAGE = "courier-mta", "courier-base", "courier-authlib"
PACKAGES = Packages((MTA_PACKAGE, BASE_PACKAGE, AUTHLIB_PACKAGE))
available, require = PACKAGES.available, PACKAGES.require
HOSTNAME = "courier.lab.test"
NOT_PRODUCED = frozenset({"userunknown", "mailboxfull", "nomailbox"})  # see the module's docstring

CONTROL = {
    "me": HOSTNAME,
    "defaultdomain": HOSTNAME,
    "locals": f"localhost\n{HOSTNAME}",
    "queuetime": "4s",
    "retryalpha": "1s",
    "retrybeta": "100",
    "retrygamma": "1s",
    "retrymaxdelta": "1",
    "warntime": "1d",  # no delay warnings: one DSN a mail
}

# Run as PID 1 of the pid namespace: the listeners in the background, then courierd in its place.
LAUNCH = """\
set -a
. /etc/courier/esmtpd
TARPIT=0
BOFHCHECKDNS=0
set +a
TCPD="{couriertcpd} -noidentlookup -nodnslookup -user=courier -group=courier -maxprocs=40"
env RELAYCLIENT= $TCPD -address=127.0.0.1 {port} {courieresmtpd} &
$TCPD -address={deny_host} {deny_port} {courieresmtpd} &
set -a
. /etc/courier/courierd
ESMTP_USE_STARTTLS=0
set +a
exec /usr/lib/courier/courier/courierd
"""


# What Courier writes: RFC 3464 reports with Status 5.0.0 for every failure, the next hop's reply (or
# its own "No such domain.") in Diagnostic-Code. When queuetime runs out it says nothing of it: the
# recipient is failed, 5.0.0, with the last temporary error as "unknown; Network is down" — courieresmtp
# fails a delivery within its back-off after a refused connection with errno ENETDOWN when it kept no
# other (module.esmtp/esmtpclient.c). No word of a time limit, so the parser cannot tell it from any
# other undecided failure: it reads onhold, soft like the cell; pinned as read.
EXPECTED = {
    "hostunknown": Expect("5.0.0"),
    "mesgtoobig": Expect("5.0.0"),
    "norelaying": Expect("5.0.0"),
    "expired": Expect("5.0.0", reading=("onhold", False)),
    "later": Expect("5.0.0"),
    "blocked": Expect("5.0.0"),
}
MISREAD: dict[str, str] = {}


class LabCourier(Daemon, Mta):
    name = "courier"
    hostname = HOSTNAME
    not_produced = NOT_PRODUCED

    def __init__(self, root: Path, ports: tuple[int, int], process: subprocess.Popen[bytes]) -> None:
        self.root, self.process = root, process
        self.port, self.deny_port = ports

    def courier(self, *args: str) -> list[str]:
        return enter(self.process.pid, [str(unpacked(MTA_PACKAGE) / "usr" / "sbin" / "courier"), *args])

    def flush(self) -> None:
        subprocess.run(self.courier("flush"), capture_output=True, timeout=20)


def start(lab: Lab) -> LabCourier:
    mta, base, authlib = (unpacked(name) for name in PACKAGES.names)
    root = Path(tempfile.mkdtemp(prefix="mf-lab-courier-"))
    root.chmod(0o755)
    control = root / "etc-lab"
    (control / "courier").mkdir(parents=True)
    world = World(root / "world", HOSTNAME, lab.dns.address)
    courier_uid = world.uid("courier")
    var_lib = root / "var-lib"
    for sub in ("allfilters", "filters", "msgq", "msgs", "sts", "track", "tmp"):
        (var_lib / "courier" / sub).mkdir(parents=True, mode=0o770 if sub == "tmp" else 0o750)
        shutil.chown(var_lib / "courier" / sub, courier_uid, courier_uid)
    shutil.chown(var_lib / "courier", courier_uid, courier_uid)
    (root / "run" / "courier").mkdir(parents=True)
    shutil.chown(root / "run" / "courier", 0, courier_uid)
    (root / "run" / "courier").chmod(0o775)
    for upper in ("etc", "var-lib", "run"):
        (root / upper).mkdir(exist_ok=True)
        (root / f"{upper}-work").mkdir()
    world.overlays.extend([
        ([control, mta / "etc", base / "etc"], "/etc", root / "etc"),
        ([mta / "usr" / "lib", base / "usr" / "lib", authlib / "usr" / "lib"], "/usr/lib", None),
        ([], "/var/lib", var_lib),
        ([], "/run", root / "run"),
    ])

    def launch() -> LabCourier:
        port, deny_port = free_port(), free_port(DENY_HOST)
        for name, text in CONTROL.items():
            (control / "courier" / name).write_text(text + "\n")
        routes = lab.routes(deny_port)
        (control / "courier" / "esmtproutes").write_text(
            "".join(f"{domain}: [{host}],{route_port}\n" for domain, (host, route_port) in routes.items()))
        script = LAUNCH.format(couriertcpd=base / "usr" / "sbin" / "couriertcpd",
                               courieresmtpd=mta / "usr" / "sbin" / "courieresmtpd", port=port,
                               deny_host=DENY_HOST, deny_port=deny_port)
        (root / "launch.sh").write_text(script)
        argv = [UNSHARE, "--pid", "--fork", "--kill-child", "--", "/usr/bin/env", "-i", "/bin/sh",
                str(root / "launch.sh")]
        process = spawn(world.command(argv), root)
        return LabCourier(root, (port, deny_port), process)

    return first_greeting("courier", root, launch)

