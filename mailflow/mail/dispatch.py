"""(placeholder: being written)"""

from mailflow.context import AppContext


def run_dispatch(ctx: AppContext) -> None:
    return None
