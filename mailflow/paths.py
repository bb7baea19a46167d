"""Where the operator-editable files live: mail templates and page templates.

A checkout (and an editable install) reads the top-level templates/ folder, where operators edit the
wording; a wheel (`pip install .`) carries a copy inside the package, mailflow/templates/ (added by
setup.py's build step), so an installed mailflow renders its mails and pages from any folder.
MAILFLOW_TEMPLATES_DIR points at an operator's own folder instead of either.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_TEMPLATES = Path(__file__).resolve().parent / "templates"  # present in an installed wheel only
CHECKOUT_TEMPLATES = PROJECT_ROOT / "templates"


def shipped_templates_dir() -> Path:
    """The templates that came with this mailflow: the wheel's copy, else the checkout's folder."""
    return PACKAGE_TEMPLATES if PACKAGE_TEMPLATES.is_dir() else CHECKOUT_TEMPLATES


def templates_dir() -> Path:
    # Operators may keep their edited wording elsewhere; what came with mailflow is the default.
    override = os.environ.get("MAILFLOW_TEMPLATES_DIR")
    return Path(override) if override else shipped_templates_dir()


def web_templates_dir() -> Path:
    return templates_dir() / "web"


STATIC_DIR = Path(__file__).resolve().parent / "web" / "static"
