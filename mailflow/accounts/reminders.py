"""(placeholder: being written)"""

from mailflow.context import AppContext


def run(ctx: AppContext) -> None:
    return None
