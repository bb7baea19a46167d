"""A private little world for one MTA: its own mount and UTS namespaces (``unshare``), in which the lab
binds its own /etc/resolv.conf (the lab's DNS on a loopback address), /etc/hosts, /etc/nsswitch.conf,
/etc/passwd and /etc/group (with the daemon users the Debian packages would have created), sets the host
name, and lays tmpfs or the unpacked package's folders over the fixed paths a binary was built with.

Why: the MTAs come from Debian packages unpacked, not installed (they conflict with each other and with
the installed Postfix); their compiled-in users and paths (Debian-exim, /var/spool/smtpd,
/usr/libexec/opensmtpd) and every DNS lookup they make must not reach the host. Nothing done in a
namespace is visible outside it, and it ends with its last process.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

UNSHARE = shutil.which("unshare") or "/usr/bin/unshare"
NSENTER = shutil.which("nsenter") or "/usr/bin/nsenter"

# Daemon users the Debian packages add in their postinst; uids far from the host's own.
LAB_USERS = {"Debian-exim": 64901, "opensmtpd": 64902, "opensmtpq": 64903, "courier": 64904}


def require_root() -> None:
    """The lab mounts and binds port 53 on loopback: root only. CI runs as root, so it never skips."""
    if os.geteuid() == 0 and Path(UNSHARE).exists():
        return
    if os.environ.get("CI"):
        pytest.fail("the MTA lab needs root and unshare (util-linux): CI runs as root")
    pytest.skip("the MTA lab needs root (mount namespaces, port 53 on loopback)")


@dataclass
class World:
    """What one MTA sees: files bound over system paths, tmpfs mounts, and a host name."""

    root: Path  # where the world's own /etc files are written
    hostname: str
    dns_address: str
    binds: list[tuple[Path, str]] = field(default_factory=list)
    tmpfs: list[str] = field(default_factory=list)
    mkdirs: list[str] = field(default_factory=list)  # made after the tmpfs mounts, inside them
    # (folders, target, upper): an overlay of the folders' files (the first on top) on the target, before
    # the binds — files at compiled-in paths whose folders the host has not (DMA's /etc/dma/dma.conf,
    # Courier's /etc/courier and /usr/lib/courier); read-only, or writable into ``upper`` (its work
    # folder beside it) when there is one.
    overlays: list[tuple[list[Path], str, Path | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        etc = self.root / "etc"
        etc.mkdir(parents=True, exist_ok=True)
        short = self.hostname.split(".")[0]
        files = {
            "resolv.conf": f"nameserver {self.dns_address}\noptions timeout:1 attempts:1\n",
            "hosts": f"127.0.0.1 localhost\n127.0.0.1 {self.hostname} {short}\n",
            "nsswitch.conf": "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n"
                             "services: files\nprotocols: files\n",
            "passwd": _with_lab_users(Path("/etc/passwd").read_text(), passwd=True),
            "group": _with_lab_users(Path("/etc/group").read_text(), passwd=False),
            "mailname": self.hostname + "\n",
        }
        for name, text in files.items():
            (etc / name).write_text(text)
            (etc / name).chmod(0o644)
            if name != "mailname" or Path("/etc/mailname").exists():
                self.binds.append((etc / name, f"/etc/{name}"))

    def uid(self, name: str) -> int:
        """The uid of ``name`` as the world's /etc/passwd says (a lab daemon user or a host user)."""
        for line in (self.root / "etc" / "passwd").read_text().splitlines():
            fields = line.split(":")
            if fields[0] == name:
                return int(fields[2])
        raise KeyError(name)

    def script(self) -> str:
        lines = ["set -e"]
        for folders, target, upper in self.overlays:
            options = "lowerdir=" + ":".join([*map(str, folders), target])
            if upper is not None:
                options += f",upperdir={upper},workdir={upper}-work"
            lines.append(f"mount -t overlay lab -o {shlex.quote(options)} {shlex.quote(target)}")
        for source, target in self.binds:
            lines.append(f"mount --bind {shlex.quote(str(source))} {shlex.quote(target)}")
        for target in self.tmpfs:
            lines.append(f"mount -t tmpfs -o mode=0755 lab {shlex.quote(target)}")
        for target in self.mkdirs:
            lines.append(f"mkdir -p {shlex.quote(target)}")
        lines.append(f"hostname {shlex.quote(self.hostname)}")
        lines.append('exec "$@"')
        return "\n".join(lines)

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run in a new namespace of this world (daemons it starts stay in it)."""
        return [UNSHARE, "--mount", "--uts", "--propagation", "private", "--", "/bin/sh", "-c",
                self.script(), "lab-world", *argv]

    def run(self, argv: list[str], timeout: float = 30) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(self.command(argv), capture_output=True, timeout=timeout)


def enter(pid: int, argv: list[str]) -> list[str]:
    """``argv`` run inside the namespaces of the running process ``pid`` (e.g. ``smtpctl`` beside smtpd)."""
    return [NSENTER, "--mount", "--uts", "--target", str(pid), "--", *argv]


def _with_lab_users(text: str, passwd: bool) -> str:
    names = {line.split(":", 1)[0] for line in text.splitlines() if line}
    extra = []
    for name, uid in LAB_USERS.items():
        if name in names:
            continue
        extra.append(f"{name}:x:{uid}:{uid}:lab daemon:/nonexistent:/usr/sbin/nologin" if passwd
                     else f"{name}:x:{uid}:")
    return text.rstrip("\n") + "\n" + "".join(line + "\n" for line in extra)
