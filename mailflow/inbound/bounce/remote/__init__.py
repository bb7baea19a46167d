"""Remote-host rules: providers whose own error codes name the reason better than the text.

Some receiving services (Cox, Spectrum, Orange/La Poste, Facebook, Tencent, KDDI,
NTT DOCOMO, Yahoo, MessageLabs, I.UA, AOL, Apple) document their rejection codes ("AUP#CXBL", "OFR_506",
"RCP-P2").  When a failed recipient's domain or the remote MTA that answered
belongs to one of them, its module maps the code or phrase to a reason; an empty
answer leaves the general classifier in charge.  One module per provider, each with
`FAMILIES` (the corpus families it was written from), `DOMAINS` (recipient domains),
`HOSTS` (remote MTA host suffixes) and `reason(hit)`.  `SELECTION` is the list in use.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from types import ModuleType

from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.patterns import lazy
from mailflow.inbound.bounce.remote import (
    aol,
    apple,
    cox,
    facebook,
    franceptt,
    iua,
    kddi,
    messagelabs,
    nttdocomo,
    spectrum,
    tencent,
    yahoo,
)
from mailflow.inbound.bounce.selection import Selection

MODULES: tuple[ModuleType, ...] = (
    cox,
    spectrum,
    franceptt,
    facebook,
    tencent,
    kddi,
    nttdocomo,
    yahoo,
    messagelabs,
    iua,
    aol,
    apple,
)
SELECTION: Selection[tuple[ModuleType, ...]] = Selection(MODULES)
Rule = Callable[[Hit], str]

# "host mx.example.com[192.0.2.1]", "host: smtp-in.orange.fr (193.252.22.65)", "while talking to mx.example."
_HOST_RE = lazy(
    r"(?:\bhost:?|while talking to|remote host|from remote server)\s+"
    r"\[?([a-z0-9][a-z0-9.-]+\.[a-z]{2,})\.?[\]\s\[(:]",
    re.I,
)


def remote_host(hit: Hit) -> str:
    """The remote MTA named by the DSN or the diagnostic, lower-cased ('' if none)."""
    if hit.rhost:
        return hit.rhost.lower().rstrip(".")
    m = _HOST_RE.search(hit.diagnostic + " ")
    return m.group(1).lower().rstrip(".") if m else ""


def provider_rule(hit: Hit) -> Rule | None:
    modules = SELECTION.current()
    by_domain, by_host = _index(modules)
    rule = _under(hit.address.rpartition("@")[2], by_domain)
    if rule is not None:
        return rule
    host = remote_host(hit)
    return _under(host, by_host) if host else None


def _under(name: str, table: dict[str, Rule]) -> Rule | None:
    """The rule of `name` or of the nearest domain above it ("mx1.mail.aol.com" -> "aol.com")."""
    labels = name.split(".")
    for i in range(len(labels) - 1):
        rule = table.get(".".join(labels[i:]))
        if rule is not None:
            return rule
    return None


_INDEXES: dict[tuple[ModuleType, ...], tuple[dict[str, Rule], dict[str, Rule]]] = {}


def _index(modules: tuple[ModuleType, ...]) -> tuple[dict[str, Rule], dict[str, Rule]]:
    """Recipient domains and remote-host suffixes -> rule, built once per module list."""
    found = _INDEXES.get(modules)
    if found is None:
        by_domain: dict[str, Rule] = {}
        by_host: dict[str, Rule] = {}
        for module in modules:
            for domain in module.DOMAINS:
                by_domain.setdefault(domain, module.reason)
            for host in module.HOSTS:
                by_host.setdefault(host.lstrip("."), module.reason)
        found = _INDEXES[modules] = (by_domain, by_host)
    return found


def remote_reason(hit: Hit) -> str:
    """The provider's own reason for this failure, '' when none applies."""
    if not hit.diagnostic:
        return ""
    rule = provider_rule(hit)
    return rule(hit) if rule is not None else ""
