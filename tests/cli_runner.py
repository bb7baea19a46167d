"""The real `mailflow` command line run in the test's process (argument parsing, settings from the
environment), with what it printed."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mailflow.cli import main


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> Result:
    capsys.readouterr()
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse refusing an argument
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return Result(code, out, err)
