"""Server-rendered zh-TW pages (Jinja2, autoescaped) from templates/web/."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from mailflow.mail.render import display_hours
from mailflow.paths import web_templates_dir
from mailflow.timeutil import roc_date, roc_datetime
from mailflow.web import labels
from mailflow.web.security import CSRF_FIELD, LazyCsrfToken, is_staff_path


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(web_templates_dir())),
        # Templates ship with the code: no stat() of every template file on every render.
        auto_reload=False,
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["roc_date"] = roc_date
    env.filters["roc_datetime"] = _roc_datetime
    env.globals.update(labels.template_globals())
    return env


def _roc_datetime(moment: datetime | str | None) -> str:
    """roc_datetime of a datetime or of the ISO text the JSON-shaped views carry; empty for none."""
    if isinstance(moment, str):
        try:
            return roc_datetime(datetime.fromisoformat(moment))
        except ValueError:
            return moment
    return roc_datetime(moment) if moment else ""


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    settings = request.app.state.ctx.settings
    base = {
        "request": request,
        "csrf_field": CSRF_FIELD,
        "csrf_token": LazyCsrfToken(request),
        "support_phone": settings.mail.support_phone,
        "support_hours": display_hours(settings.mail.support_hours),  # the mails' rendering: 8:00~18:00
        "capture_mode": settings.smtp.mode == "capture",
        "staff_page": is_staff_path(request.url.path),
    }
    html = environment().get_template(template).render(**base, **context)
    return HTMLResponse(html, status_code=status_code)
