"""Intermediate record a detector fills for one failed recipient.

Detectors only collect facts (address, status, reply code, diagnostic text, SMTP
command, optional explicit reason); `reasons.classify` turns the facts into
Sisimai's vocabulary afterwards, so every detector shares one classification.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Hit:
    """One failed recipient as seen by a detector (mutable while merging)."""

    address: str
    action: str = ""
    status: str = ""
    reply_code: str = ""
    diagnostic: str = ""
    command: str = ""
    reason: str = ""  # explicit reason when the MTA states it unambiguously
    diagnostic_type: str = ""  # "SMTP", "X-UNIX", ... from Diagnostic-Code
    rhost: str = ""  # the remote MTA that answered (Remote-MTA or the notice), when known

    def merge(self, other: Hit) -> None:
        """Fill fields still empty here from `other` (same recipient)."""
        for name in _FIELDS:
            if not getattr(self, name) and getattr(other, name):
                setattr(self, name, getattr(other, name))


_FIELDS = ("action", "status", "reply_code", "diagnostic", "command", "reason", "diagnostic_type", "rhost")
