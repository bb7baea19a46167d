"""(placeholder: being written) The capture SMTP server of smtp.mode = capture."""

from typing import Any

from mailflow.context import AppContext


def start_capture_server(ctx: AppContext) -> Any:
    raise NotImplementedError
