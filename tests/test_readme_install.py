"""Issue 15 item 20: the README's first command works as written on a fresh Debian, whose pip refuses
to install into the system's Python (PEP 668): it makes and activates a virtual environment before
`pip install`, and git ignores that environment."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def first_shell_block(markdown: str) -> str:
    found = re.search(r"```sh\n(.*?)```", markdown, re.S)
    assert found, "the README has no sh block"
    return found.group(1)


def test_the_first_command_makes_and_activates_a_venv_before_pip_install() -> None:
    command = first_shell_block((REPO / "README.md").read_text(encoding="utf-8"))
    steps = [step.strip() for step in command.replace("\n", " ").split("&&")]
    venv = steps.index("python3 -m venv .venv")
    activate = steps.index(". .venv/bin/activate")
    install = next(i for i, step in enumerate(steps) if step.startswith("pip install"))
    assert venv < activate < install < steps.index("mailflow run"), steps


def test_git_ignores_the_venv() -> None:
    ignored = (REPO / ".gitignore").read_text(encoding="utf-8").split()
    assert ".venv/" in ignored
