"""What every part of a running mailflow shares: its settings, its database and who it is."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

from mailflow.config import Settings
from mailflow.db import Database


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class AppContext:
    settings: Settings
    db: Database
    worker_id: str = field(default_factory=default_worker_id)
    # The port the capture SMTP server of this process listens on (smtp.port 0 lets it pick one); 0 when
    # none runs here. Settings stay as loaded: what a running part learns lives on the context.
    capture_port: int = 0

    def smtp_port(self) -> int:
        """Where dispatch sends: the relay's smtp.port, or in capture mode this process's capture server
        (else a fixed smtp.port another process captures on; 0: nowhere to send from here)."""
        smtp = self.settings.smtp
        return smtp.port if smtp.mode == "relay" else self.capture_port or smtp.port

    @classmethod
    def from_settings(cls, settings: Settings) -> AppContext:
        return cls(settings=settings, db=Database(settings.database.url))
