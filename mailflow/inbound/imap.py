"""(placeholder: being written)"""

from mailflow.context import AppContext


def poll(ctx: AppContext) -> None:
    return None
