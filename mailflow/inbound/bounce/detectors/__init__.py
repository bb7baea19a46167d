"""Ordered list of bounce detectors: MTA families first, generic readers last.

A new bounce format is a new module here and one line in `MODULES`.  Each
module has `NAME`, `FAMILIES` (the corpus families, by file-name prefix, whose
mails it was written from; empty for the generic readers) and
`detect(ctx) -> list[Hit] | None` where None means "not my format" and a list
(possibly empty) means "mine".  `SELECTION` is what the parser runs; the
leave-one-family-out measurement swaps in the list without a family's detectors.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

from mailflow.inbound.bounce.context import Context
from mailflow.inbound.bounce.detectors import (
    amazonses,
    apachejames,
    domino,
    dragonfly,
    exchange,
    exim,
    ezweb,
    fml,
    gmail,
    googleworkspace,
    imailserver,
    mfilter,
    opensmtpd,
    plaintext,
    postfix_smtpd,
    qmail,
    receivingses,
    rfc3464,
    sendmail,
    smail,
    trendmicro,
    verizon,
    x3,
    x6,
    zoho,
)
from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.selection import Selection

Detector = Callable[[Context], "list[Hit] | None"]

MODULES: tuple[ModuleType, ...] = (
    amazonses,
    receivingses,
    fml,
    verizon,
    apachejames,
    ezweb,
    imailserver,
    trendmicro,
    x3,
    postfix_smtpd,
    smail,
    domino,
    dragonfly,
    opensmtpd,
    qmail,
    exim,
    googleworkspace,
    gmail,
    x6,
    zoho,
    mfilter,
    exchange,
    rfc3464,
    sendmail,
    plaintext,
)

Detectors = tuple[tuple[str, Detector], ...]


def detectors_of(modules: tuple[ModuleType, ...]) -> Detectors:
    return tuple((m.NAME, m.detect) for m in modules)


DETECTORS: Detectors = detectors_of(MODULES)
SELECTION: Selection[Detectors] = Selection(DETECTORS)
