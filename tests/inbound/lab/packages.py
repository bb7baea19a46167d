"""Where the lab finds the MTAs that are not installed: scripts/lab_mtas.sh downloads Debian's packages
(exim4-daemon-light, opensmtpd, sendmail-bin, sendmail-cf, dma, courier-mta, courier-base,
courier-authlib) with ``apt-get download`` and unpacks each with ``dpkg -x`` into its own folder of the
cache, with the package's version beside it. They conflict with each other and with Postfix as the
system's MTA; unpacked, each runs from its folder with its own configuration (namespace.py supplies what
its postinst would have created).

Skips when a package is missing, except in CI (CI set), where scripts/test.sh must have unpacked it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

CACHE = Path(os.environ.get("MAILFLOW_LAB_MTAS", "/var/cache/mailflow-lab"))


def unpacked(package: str) -> Path:
    """The folder ``package`` was unpacked into (skip or fail when it was not)."""
    folder = CACHE / package
    if (folder / "VERSION").exists():
        return folder
    if os.environ.get("CI"):
        pytest.fail(f"{package} is not unpacked in {CACHE}: CI must run the MTA lab "
                    "(bash scripts/lab_mtas.sh)")
    pytest.skip(f"{package} is not unpacked in {CACHE} (run bash scripts/lab_mtas.sh as root)")


def present(package: str) -> bool:
    return (CACHE / package / "VERSION").exists()


@dataclass(frozen=True)
class Packages:
    """The unpacked packages one MTA of the lab runs from."""

    names: tuple[str, ...]

    def available(self) -> bool:
        return all(present(name) for name in self.names)

    def require(self) -> None:
        for name in self.names:
            unpacked(name)
