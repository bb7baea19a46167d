"""Real peers the tests run (Dovecot, Postfix, chromium): present, or skipped — but never skipped in CI,
where .ci/run installs them and a missing one must fail the run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def require_program(path: str, package: str) -> None:
    if Path(path).exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"{path} is missing: CI must run these tests (apt-get install {package})")
    pytest.skip(f"{path} is not installed (apt-get install {package})")
