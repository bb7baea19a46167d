"""Times as people here read them: Asia/Taipei, and 民國 (ROC) dates where the seed uses them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

TAIPEI = ZoneInfo("Asia/Taipei")


def now() -> datetime:
    return datetime.now(UTC)


def taipei(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(TAIPEI)


def iso_taipei(moment: datetime | None) -> str | None:
    """The one way machines read a time from us (JSON of the CLI and the API, the CSV): ISO 8601 in
    Taipei time with its offset, to the second, e.g. '2026-11-29T10:02:11+08:00'. None stays None."""
    return taipei(moment).isoformat(timespec="seconds") if moment is not None else None


def roc_date(day: date | datetime) -> str:
    """民國 date, e.g. 2009-04-13 -> '98年4月13日' (a datetime is read in Taipei time)."""
    if isinstance(day, datetime):
        day = taipei(day).date()
    return f"{day.year - 1911}年{day.month}月{day.day}日"


def roc_datetime(moment: datetime) -> str:
    """'民國115年11月25日 16:03' in Taipei time."""
    local = taipei(moment)
    return f"民國{roc_date(local.date())} {local:%H:%M}"
