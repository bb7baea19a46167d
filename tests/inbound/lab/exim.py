"""Exim in the bounce lab: Debian's exim4-daemon-light, unpacked (packages.py), run as a daemon with
its own configuration (``-C``), spool and logs in a temporary folder, inside a lab namespace (which
gives it the Debian-exim user and the lab's DNS).

The configuration keeps the shape of Exim's default one where it matters for the bounce: a
``localuser`` router with ``cannot_route_message = Unknown user``, a ``dnslookup`` router for other
domains (the lab's DNS answers NXDOMAIN: "Unrouteable address"), manualroute routers for the lab's
domains, an smtp transport with ``protocol = lmtp`` for Dovecot. The ACL relays for 127.0.0.1 on the
lab's listener and, on a second listener of the same daemon, for nobody ("relay not permitted", as
Exim's default ACL says it). Exim runs its deliveries as Debian-exim (-C drops root for them).
Retry rule F,4s,1s: a host that keeps refusing is given up after four seconds.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.inbound.lab.cells import CELLS
from tests.inbound.lab.daemon import Daemon, first_greeting, spawn
from tests.inbound.lab.expect import Expect
from tests.inbound.lab.namespace import World
from tests.inbound.lab.packages import Packages, unpacked
from tests.inbound.lab.world import DENY_HOST, Lab, Mta
from tests.peers import free_port

PACKAGE = "exim4-daemon-light"
PACKAGES = Packages((PACKAGE,))
available, require = PACKAGES.available, PACKAGES.require
HOSTNAME = "exim.lab.test"

CONFIGURE = """\
primary_hostname = {hostname}
qualify_domain = {hostname}
domainlist local_domains = {hostname}
exim_path = {binary}
spool_directory = {root}/spool
log_file_path = {root}/log/%slog
pid_file_path = {root}/exim.pid
exim_user = Debian-exim
exim_group = Debian-exim
local_interfaces = <; 127.0.0.1.{port} ; {deny_host}.{deny_port}
acl_smtp_rcpt = acl_check_rcpt
rfc1413_query_timeout = 0s
tls_advertise_hosts =
keep_environment =
delay_warning =
message_size_limit = 50M

begin acl

acl_check_rcpt:
  deny    condition = ${{if eq{{$received_port}}{{{deny_port}}}}}
          !domains = +local_domains
          message = relay not permitted
  accept  hosts = 127.0.0.1
  accept  domains = +local_domains
  deny    message = relay not permitted

begin routers

{route_routers}
lab_lmtp:
  driver = manualroute
  domains = lmtp.lab.test
  route_list = * 127.0.0.1
  transport = lab_lmtp
  self = send

dnslookup:
  driver = dnslookup
  domains = ! +local_domains
  transport = lab_smtp
  no_more

localuser:
  driver = accept
  domains = +local_domains
  check_local_user
  transport = local_delivery
  cannot_route_message = Unknown user

begin transports

{route_transports}
lab_smtp:
  driver = smtp
  hosts_avoid_tls = *

lab_lmtp:
  driver = smtp
  protocol = lmtp
  port = {lmtp_port}
  allow_localhost

local_delivery:
  driver = appendfile
  file = {root}/mail/$local_part

begin retry

*  *  F,4s,1s
"""


# One router and one transport per lab route. Every route is 127.0.0.1 on its own port, and Exim keeps
# the messages waiting for a host per transport and per IP address, not per port: with one transport, a
# mail deferred at the closed port went out over the next connection to 127.0.0.1 — to the next hop.
ROUTE_ROUTER = """\
to_{name}:
  driver = manualroute
  domains = {domain}
  route_list = * {host}
  transport = smtp_{name}
  self = send
"""
ROUTE_TRANSPORT = """\
smtp_{name}:
  driver = smtp
  port = {port}
  allow_localhost
  hosts_avoid_tls = *
"""


def route_sections(routes: dict[str, tuple[str, int]]) -> dict[str, str]:
    routers, transports = [], []
    for domain, (host, port) in routes.items():
        name = domain.split(".")[0]
        routers.append(ROUTE_ROUTER.format(name=name, domain=domain, host=host))
        transports.append(ROUTE_TRANSPORT.format(name=name, port=port))
    return {"route_routers": "\n".join(routers), "route_transports": "\n".join(transports)}


# What Exim writes: Status 5.0.0 for every permanent failure, even when the next hop gave an enhanced
# code (that is in the diagnostic text only): the words decide.
EXPECTED = {name: Expect("5.0.0") for name in CELLS}
MISREAD: dict[str, str] = {}

class LabExim(Daemon, Mta):
    name = "exim"
    hostname = HOSTNAME

    def __init__(self, binary: Path, world: World, root: Path, port: int,
                 process: subprocess.Popen[bytes]) -> None:
        self.binary, self.world, self.root, self.port, self.process = binary, world, root, port, process

    def exim(self, *args: str) -> list[str]:
        return self.world.command([str(self.binary), "-C", str(self.root / "configure"), *args])

    def flush(self) -> None:
        # -qff: every message, frozen ones too, whatever its retry time says.
        subprocess.run(self.exim("-qff"), capture_output=True, timeout=20)

    def log(self) -> str:
        path = self.root / "log" / "mainlog"
        return self.output() + (path.read_text(errors="replace") if path.exists() else "")


def binary() -> Path:
    return unpacked(PACKAGE) / "usr" / "sbin" / "exim4"


def start(lab: Lab) -> LabExim:
    exim = binary()
    root = Path(tempfile.mkdtemp(prefix="mf-lab-exim-"))
    root.chmod(0o755)
    world = World(root / "world", HOSTNAME, lab.dns.address)
    exim_uid = world.uid("Debian-exim")
    for sub in ("spool", "log", "mail"):
        (root / sub).mkdir()
        shutil.chown(root / sub, exim_uid, exim_uid)

    def launch() -> LabExim:
        port, deny_port = free_port(), free_port(DENY_HOST)
        (root / "configure").write_text(CONFIGURE.format(
            hostname=HOSTNAME, root=root, binary=exim, port=port, deny_host=DENY_HOST, deny_port=deny_port,
            lmtp_port=lab.lmtp.port, **route_sections(lab.routes(deny_port))))
        process = spawn(world.command([str(exim), "-C", str(root / "configure"), "-bdf"]), root)
        return LabExim(exim, world, root, port, process)

    return first_greeting("exim", root, launch)
