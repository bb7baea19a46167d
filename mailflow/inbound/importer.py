"""`mailflow inbound import PATH`: mails from a file or folder fed through the inbound pipeline as if they
had been received — each stored raw (and committed) first, then processed.

What PATH may be: one .eml file, an mbox file (starts with a "From " line), a Maildir (a folder with
cur/ and new/), or a folder of .eml/mbox files. The files are only read, never changed.
"""

from __future__ import annotations

import mailbox
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mailflow.context import AppContext
from mailflow.inbound import route
from mailflow.inbound.store import Incoming, store_mail, store_mails
from mailflow.models import InboundStatus


class ImportError_(ValueError):
    """PATH cannot be read as mail; the message is for the operator (zh-TW)."""


@dataclass
class ImportResult:
    total: int = 0
    duplicates: int = 0
    statuses: dict[str, int] = field(default_factory=dict)

    @property
    def processed(self) -> int:
        return self.statuses.get(InboundStatus.PROCESSED, 0)

    @property
    def quarantined(self) -> int:
        return self.statuses.get(InboundStatus.QUARANTINED, 0)


@dataclass(frozen=True)
class Source:
    """One message to import: where it is (for source_ref) and how to read its bytes."""

    ref: str
    read: Callable[[], bytes]


def is_maildir(path: Path) -> bool:
    return path.is_dir() and (path / "cur").is_dir() and (path / "new").is_dir()


def is_mbox(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(5) == b"From "


def _maildir_sources(path: Path) -> Iterator[Source]:
    box = mailbox.Maildir(str(path), factory=None, create=False)
    for key in sorted(box.keys()):
        yield Source(f"{path}#{key}", lambda key=key: box.get_bytes(key))  # type: ignore[misc]


def _mbox_sources(path: Path) -> Iterator[Source]:
    box = mailbox.mbox(str(path), factory=None, create=False)
    for index, key in enumerate(box.keys()):
        yield Source(f"{path}#{index + 1}", lambda key=key: box.get_bytes(key))  # type: ignore[misc]


def _file_sources(path: Path) -> Iterator[Source]:
    if is_mbox(path):
        yield from _mbox_sources(path)
    else:
        yield Source(str(path), path.read_bytes)


def sources(path: Path) -> list[Source]:
    """Every message under ``path``, in a stable order."""
    if not path.exists():
        raise ImportError_(f"找不到檔案或資料夾:{path}")
    if is_maildir(path):
        return list(_maildir_sources(path))
    if path.is_dir():
        return [s for f in sorted(path.iterdir()) if f.is_file() and not f.name.startswith(".")
                for s in _file_sources(f)]
    if path.is_file():
        return list(_file_sources(path))
    raise ImportError_(f"無法讀取:{path}")


BATCH = 100  # mails stored in one commit and processed in one transaction (as an IMAP batch)


def import_path(ctx: AppContext, path: Path, progress: Callable[[int], None] | None = None) -> ImportResult:
    """Store and process every message under ``path``, a batch at a time (store_mails, then
    route.process_batch); ``progress(n)`` is called after each batch with its size."""
    result = ImportResult()
    import_sources(ctx, sources(path), result, progress)
    return result


def import_sources(ctx: AppContext, found: list[Source], result: ImportResult,
                   progress: Callable[[int], None] | None = None) -> None:
    """Store and process ``found`` into ``result``, a batch at a time."""
    for start in range(0, len(found), BATCH):
        batch = found[start:start + BATCH]
        for status in import_batch(ctx, batch, result):
            result.statuses[status] = result.statuses.get(status, 0) + 1
        if progress is not None:
            progress(len(batch))


def import_batch(ctx: AppContext, batch: list[Source], result: ImportResult) -> list[str]:
    """The final status of each of ``batch``'s messages, in order."""
    result.total += len(batch)
    statuses: list[str] = []
    readable: list[tuple[int, Incoming]] = []
    for source in batch:
        try:
            readable.append((len(statuses), Incoming(source.read(), "import", source.ref)))
            statuses.append("")
        except (OSError, KeyError) as exc:
            statuses.append(f"unreadable: {exc}")
    stored = store_mails(ctx.db, [mail for _, mail in readable])
    result.duplicates += sum(not mail.new for mail in stored)
    # An earlier import that stopped between storing and processing left some `stored`: finished now.
    done = route.process_batch(ctx, [(mail.id, incoming.raw) for mail, (_, incoming)
                                     in zip(stored, readable, strict=True)
                                     if mail.status == InboundStatus.STORED])
    for mail, (index, _) in zip(stored, readable, strict=True):
        statuses[index] = done.get(mail.id, mail.status)
    return statuses


def import_one(ctx: AppContext, source: Source, result: ImportResult) -> str:
    result.total += 1
    try:
        raw = source.read()
    except (OSError, KeyError) as exc:
        return f"unreadable: {exc}"
    stored = store_mail(ctx.db, raw, "import", source.ref)
    if not stored.new:
        result.duplicates += 1
    # An earlier import that stopped between storing and processing left it `stored`: finish it now.
    return route.process(ctx, stored.id) if stored.status == InboundStatus.STORED else stored.status
