"""The knowledge the parser uses now: all of it, or a part of it while a measurement runs.

The leave-one-family-out measurement (tests/inbound/lofo.py) classifies each family of the corpus
with the detectors, provider rules and phrases learned from that family switched off. The parser
reads its detectors, providers and reason catalogue through a `Selection`, so a measurement can swap
them for the length of a `with` block. Not thread-safe; production code never swaps.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

T = TypeVar("T")


class Selection(Generic[T]):
    def __init__(self, full: T) -> None:
        self.full = full
        self._stack = [full]

    def current(self) -> T:
        return self._stack[-1]

    @contextmanager
    def using(self, value: T) -> Iterator[T]:
        self._stack.append(value)
        try:
            yield value
        finally:
            self._stack.pop()
