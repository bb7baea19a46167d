"""Ordered list of bounce detectors: MTA families first, generic readers last.

A new bounce format is a new module here and one line in `DETECTORS`.  Each
module has `NAME` and `detect(ctx) -> list[Hit] | None` where None means
"not my format" and a list (possibly empty) means "mine".
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
    flufl_fallback,
    fml,
    gmail,
    googleworkspace,
    imailserver,
    mfilter,
    opensmtpd,
    postfix_smtpd,
    qmail,
    receivingses,
    rfc3464,
    sendmail,
    smail,
    trendmicro,
    verizon,
    x3,
    x5,
    x6,
    zoho,
)
from mailflow.inbound.bounce.model import Hit

Detector = Callable[[Context], "list[Hit] | None"]

_MODULES: tuple[ModuleType, ...] = (
    amazonses,
    receivingses,
    fml,
    verizon,
    apachejames,
    ezweb,
    imailserver,
    trendmicro,
    x3,
    x5,
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
    flufl_fallback,
)

DETECTORS: tuple[tuple[str, Detector], ...] = tuple((m.NAME, m.detect) for m in _MODULES)
