"""(placeholder: being written)"""

from mailflow.context import AppContext


def run_scheduled(ctx: AppContext) -> None:
    return None
