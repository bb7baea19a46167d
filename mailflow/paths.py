"""Where the operator-editable files live: mail templates and page templates under templates/."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def templates_dir() -> Path:
    # Operators may keep their edited wording elsewhere; the checkout's templates/ is the default.
    return Path(os.environ.get("MAILFLOW_TEMPLATES_DIR") or PROJECT_ROOT / "templates")


def web_templates_dir() -> Path:
    return templates_dir() / "web"


STATIC_DIR = Path(__file__).resolve().parent / "web" / "static"
