"""mailflow — the mail side of the TIPC harbour-area pass system (港區通行證通用管理系統 2.0)."""

__version__ = "0.1.0"
