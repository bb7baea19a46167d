"""The one shape of a refused request, shared by every concern: what the person reads and what HTTP says.

Documents, reviews, bindings, tokens, verification and support actions each raise their own subclass, so
a route catches exactly the refusals of the work it called; the fields are the same everywhere."""

from __future__ import annotations


class Refused(Exception):
    """``status`` is the HTTP status of the contract, ``message`` the zh-TW sentence for the person, and
    ``reason`` (optional) a short English word for logs and tests."""

    def __init__(self, status: int, message: str, reason: str = "") -> None:
        super().__init__(f"{status} {reason}" if reason else message)
        self.status = status
        self.message = message
        self.reason = reason
