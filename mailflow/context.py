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

    @classmethod
    def from_settings(cls, settings: Settings) -> AppContext:
        return cls(settings=settings, db=Database(settings.database.url))
