"""Postfix in the bounce lab: the installed Debian package, a throw-away instance (tests/deploy/postfix.py
starts it) with its own main.cf/master.cf, run in a lab namespace so its DNS is the lab's.

How each failure comes about: local(8) finds no such user; the smtp client's MX lookup gets NXDOMAIN;
the lmtp client meets Dovecot's quota; the next hop advertises a SIZE smaller than the mail; a second
smtpd of the same instance (``-o`` overrides, its own host name so the client does not see a loop)
relays for nobody; a closed port with a 4-second queue lifetime; and the next hop's scripted refusals.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.deploy.postfix import (
    INSTANCE_CF,
    MASTER_CF,
    POSTFIX,
    POSTMAP,
    PostfixInstance,
    launch,
    make_root,
    postfix_or_skip,
)
from tests.inbound.lab.expect import Expect
from tests.inbound.lab.namespace import World
from tests.inbound.lab.world import DENY_HOST, Lab, Mta
from tests.peers import free_port

POSTQUEUE = "/usr/sbin/postqueue"
HOSTNAME = "postfix.lab.test"

MAIN_CF = INSTANCE_CF + """\
myhostname = {hostname}
mydomain = lab.test
myorigin = $myhostname
mydestination = $myhostname
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
transport_maps = hash:{root}/conf/transport
alias_maps =
alias_database =
# Any local part is taken at RCPT; local(8) then finds no such user and bounces (not a 550 at RCPT,
# which would leave the SMTP client, not Postfix, to write the bounce).
local_recipient_maps =
smtpd_peername_lookup = no
smtp_host_lookup = dns
biff = no
# Seconds instead of days: a mail nobody takes expires while the test waits.
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 1s
maximal_queue_lifetime = 4s
bounce_queue_lifetime = 4s
delay_warning_time = 0
smtp_connect_timeout = 2s
"""

# The lmtp client, and the listener that relays for nobody: deny.lab.test is none of its destinations,
# no client is in its mynetworks.
DENY_LISTENER = ("lmtp unix - - n - - lmtp\n"
                 "{host}:{port} inet n - n - - smtpd -o myhostname=deny.lab.test -o mynetworks= "
                 "-o smtpd_relay_restrictions=reject_unauth_destination\n")


# What Postfix writes: a specific status for everything, its own (local 5.1.1, DNS 5.4.4, the next hop's
# SIZE 5.3.4, the 4.4.1 of the last failed connection when the queue lifetime runs out) or the next hop's.
EXPECTED = {
    "userunknown": Expect("5.1.1"),
    "hostunknown": Expect("5.4.4"),
    "mailboxfull": Expect("5.2.2"),
    "nomailbox": Expect("5.1.1"),
    "mesgtoobig": Expect("5.3.4"),
    "norelaying": Expect("5.7.1"),
    "expired": Expect("4.4.1"),
    "later": Expect("5.1.1"),
    "blocked": Expect("5.7.1"),
}
MISREAD: dict[str, str] = {}

class LabPostfix(Mta):
    name = "postfix"
    hostname = HOSTNAME

    def __init__(self, instance: PostfixInstance) -> None:
        self.instance = instance
        self.port = instance.port

    def flush(self) -> None:
        subprocess.run([POSTQUEUE, "-c", str(self.instance.config_dir), "-f"], capture_output=True,
                       timeout=20)

    def log(self) -> str:
        return self.instance.log()

    def stop(self) -> None:
        self.instance.stop()


def start(lab: Lab) -> LabPostfix:
    root = make_root()
    world = World(root / "world", HOSTNAME, lab.dns.address)
    deny_port = free_port(DENY_HOST)

    def write_config(smtpd_port: int) -> None:
        conf = root / "conf"
        (conf / "main.cf").write_text(MAIN_CF.format(root=root, hostname=HOSTNAME))
        (conf / "master.cf").write_text(MASTER_CF.format(smtpd_port=smtpd_port)
                                        + DENY_LISTENER.format(host=DENY_HOST, port=deny_port))
        routes = [f"{domain} smtp:[{host}]:{port}" for domain, (host, port) in lab.routes(deny_port).items()]
        routes.append(f"lmtp.lab.test lmtp:inet:127.0.0.1:{lab.lmtp.port}")
        (conf / "transport").write_text("\n".join(routes) + "\n")
        subprocess.run([POSTMAP, "-c", str(conf), str(conf / "transport")], check=True, capture_output=True,
                       timeout=30)

    return LabPostfix(launch(root, write_config, world.command))


def available() -> bool:
    return Path(POSTFIX).exists()


def require() -> None:
    postfix_or_skip()
