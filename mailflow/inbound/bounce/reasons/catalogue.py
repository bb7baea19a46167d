"""Every reason module in one catalogue (`SELECTION` lets a measurement swap in a smaller one).

A new reason is a new module beside this one and one line in `ALL`.
"""

from __future__ import annotations

from mailflow.inbound.bounce.reasons import (
    authfailure,
    badreputation,
    blocked,
    contenterror,
    exceedlimit,
    expired,
    failedstarttls,
    filtered,
    hasmoved,
    hostunknown,
    mailboxfull,
    mailererror,
    mesgtoobig,
    networkerror,
    norelaying,
    notaccept,
    notcompliantrfc,
    onhold,
    policyviolation,
    rejected,
    requireptr,
    securityerror,
    spamdetected,
    speeding,
    suppressed,
    suspend,
    syntaxerror,
    systemerror,
    systemfull,
    toomanyconn,
    userunknown,
    virusdetected,
)
from mailflow.inbound.bounce.reasons.entry import Catalogue, Reason
from mailflow.inbound.bounce.selection import Selection

ALL: tuple[Reason, ...] = (
    authfailure.REASON,
    badreputation.REASON,
    blocked.REASON,
    contenterror.REASON,
    exceedlimit.REASON,
    expired.REASON,
    failedstarttls.REASON,
    filtered.REASON,
    hasmoved.REASON,
    hostunknown.REASON,
    mailboxfull.REASON,
    mailererror.REASON,
    mesgtoobig.REASON,
    networkerror.REASON,
    norelaying.REASON,
    notaccept.REASON,
    notcompliantrfc.REASON,
    onhold.REASON,
    policyviolation.REASON,
    rejected.REASON,
    requireptr.REASON,
    securityerror.REASON,
    spamdetected.REASON,
    speeding.REASON,
    suppressed.REASON,
    suspend.REASON,
    syntaxerror.REASON,
    systemerror.REASON,
    systemfull.REASON,
    toomanyconn.REASON,
    userunknown.REASON,
    virusdetected.REASON,
)
FULL = Catalogue.of(ALL)
SELECTION = Selection(FULL)
current = SELECTION.current
